/**
 * What `collect` hands to `evaluate`: plain JSON (certificates as base64 DER), so a stored
 * observation can be evaluated again, at any `now`, without the network.
 */

/** What the probe saw at one endpoint. */
export interface EndpointObservation {
  /** `host:port`, or `servername@host:port` when the servername differs from the host: the finding's resource and the gauges' `endpoint` label. */
  endpoint: string;
  host: string;
  port: number;
  /** The SNI sent; absent for IP literals (RFC 6066 §3 forbids IP addresses in SNI). */
  sni?: string;
  /** The name the certificate must be valid for: the configured servername, else the host. */
  expectedName: string;
  /** Set when no certificate could be read, e.g. `connection refused`: the finding is `unknown`. */
  error?: string;
  /** Protocol of the main handshake, where the client offered TLS 1.0 to 1.3: the server's best. */
  protocol?: string;
  /** OpenSSL cipher name of the main handshake. */
  cipher?: string;
  /**
   * The certificates the server sent, base64 DER, leaf first, linked issuer by issuer as Node's
   * `getPeerCertificate(true)` does (it drops unrelated extras and may append the matching root
   * from the trust store).
   */
  peerChain: string[];
  /** Trusted certificates (system roots and the target's caFile) that can issue one of `peerChain`, base64 DER. */
  anchors: string[];
  /** OpenSSL's verdict on the chain during the main handshake (chain only: the name is checked separately). */
  tlsAuthorized?: boolean;
  /** OpenSSL's error code when it did not authorize, e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`. */
  tlsAuthorizationError?: string;
  /** Whether a handshake pinned to TLS 1.0 succeeded; null when it could not be told (timeout, connect failure). */
  acceptsTls10: boolean | null;
  /** Whether a handshake pinned to TLS 1.1 succeeded; null when it could not be told. */
  acceptsTls11: boolean | null;
  /** Why acceptsTls10 or acceptsTls11 is null. */
  legacyError?: string;
  /**
   * When acceptsTls10/acceptsTls11 were observed (ISO 8601): this run's start, or an earlier run's
   * when the verdict was reused (params.legacyProtocolCheckHours). Absent when no legacy
   * handshake was attempted (no certificate could be read) and in observations written before it.
   */
  legacyObservedAt?: string;
}

/** The output of `collect`: one entry per configured endpoint, in configuration order. */
export interface TlsObservation {
  endpoints: EndpointObservation[];
}
