import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { probes } from '../index.js';

/** Review R5 of issue 13's endpoint identity: IPv6 literals written in other forms are the same endpoint. */
function load(endpoints: string): { endpoints?: Array<{ host: string; name: string }>; problems?: string[] } {
  try {
    const loaded = testConfig(`tls:\n  - name: web\n    endpoints: ${endpoints}\n`, probes);
    return { endpoints: loaded.config.tls[0]?.endpoints.map((e) => ({ host: e.host, name: e.name })) };
  } catch (err) {
    if (err instanceof ConfigError) return { problems: err.problems.map((p) => p.replace(/^.*?vigil\.yaml: /, '')) };
    throw err;
  }
}

describe('TLS endpoint identity with IPv6 literals (R5)', () => {
  it('an object host written with brackets is the address, not "[[::1]]:443" (which resolved as a DNS name)', () => {
    expect(load('[{ host: "[::1]", port: 8443 }]')).toEqual({ endpoints: [{ host: '::1', name: '[::1]:8443' }] });
  });

  it('a bracketed IPv6 servername is the address (an IP literal, so never sent as SNI), and equal to the host it is not repeated', () => {
    expect(load('[{ host: "::1", servername: "[0::1]" }, { host: "10.0.0.5", servername: "[2001:db8::1]" }]')).toEqual({
      endpoints: [
        { host: '::1', name: '[::1]:443' },
        { host: '10.0.0.5', name: '2001:db8::1@10.0.0.5:443' },
      ],
    });
    const loaded = testConfig('tls:\n  - name: web\n    endpoints: [{ host: "::1", servername: "[::1]" }]\n', probes);
    expect(loaded.config.tls[0]?.endpoints[0]).toMatchObject({ host: '::1', servername: '::1', name: '[::1]:443' });
  });

  it.each([
    ['expanded form of ::1', '["[::1]", { host: "0:0:0:0:0:0:0:1" }]', 'tls[0].endpoints[1]: duplicate endpoint "[0:0:0:0:0:0:0:1]:443" (same host, port and servername as endpoints[0]): remove one'],
    ['leading zeros, default port written out', '["[::1]:443", "[0::1]"]', 'tls[0].endpoints[1]: duplicate endpoint "[0::1]:443" (same host, port and servername as endpoints[0]): remove one'],
    ['upper-case hex', '[{ host: "2001:DB8::1" }, "[2001:db8::1]"]', 'tls[0].endpoints[1]: duplicate endpoint "[2001:db8::1]:443" (same host, port and servername as endpoints[0]): remove one'],
    [
      'servername on two spellings of one address',
      '[{ host: "2001:db8::1", servername: www.example.test }, { host: "2001:db8:0::1", servername: WWW.example.test }]',
      'tls[0].endpoints[1]: duplicate endpoint "WWW.example.test@[2001:db8:0::1]:443" (same host, port and servername as endpoints[0]): remove one',
    ],
  ])('one IPv6 address written twice is a duplicate: %s', (_name, endpoints, problem) => {
    expect(load(endpoints)).toEqual({ problems: [problem] });
  });

  it('SNI-distinct endpoints on one IPv6 address stay distinct', () => {
    expect(load('[{ host: "::1", servername: a.example.test }, { host: "0::1", servername: b.example.test }, "[::1]"]')).toEqual({
      endpoints: [
        { host: '::1', name: 'a.example.test@[::1]:443' },
        { host: '0::1', name: 'b.example.test@[0::1]:443' },
        { host: '::1', name: '[::1]:443' },
      ],
    });
  });
});
