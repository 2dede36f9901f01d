import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { testConfig } from '../../test/helpers/daemon.js';
import { probes } from '../index.js';

/** Issue 13: the servername is part of a TLS endpoint's identity when it differs from the host. */
function load(endpoints: string): { names?: string[]; problems?: string[] } {
  try {
    const loaded = testConfig(`tls:\n  - name: web\n    endpoints: ${endpoints}\n`, probes);
    return { names: loaded.config.tls[0]?.endpoints.map((e) => e.name) };
  } catch (err) {
    if (err instanceof ConfigError) return { problems: err.problems.map((p) => p.replace(/^.*?vigil\.yaml: /, '')) };
    throw err;
  }
}

describe('TLS endpoint identity', () => {
  it.each([
    ['host only', '[example.com]', ['example.com:443']],
    ['servername equal to the host is not repeated', '[{ host: example.com, servername: example.com }]', ['example.com:443']],
    ['servername equal to the host in another case is the same name', '[{ host: Example.com, servername: example.COM }]', ['Example.com:443']],
    ['servername other than the host comes first, joined by @', '[{ host: 10.0.0.5, servername: www.example.test }]', ['www.example.test@10.0.0.5:443']],
    ['IPv6 host stays bracketed', '[{ host: "2001:db8::1", port: 8443, servername: www.example.test }]', ['www.example.test@[2001:db8::1]:8443']],
    [
      'SNI-distinct endpoints on one host:port are distinct resources',
      '[{ host: 10.0.0.5, servername: www.example.test }, { host: 10.0.0.5, servername: api.example.test }, "10.0.0.5:443"]',
      ['www.example.test@10.0.0.5:443', 'api.example.test@10.0.0.5:443', '10.0.0.5:443'],
    ],
    ['same host on other ports are distinct', '["a.example:443", "a.example:8443"]', ['a.example:443', 'a.example:8443']],
  ])('%s', (_name, endpoints, names) => {
    expect(load(endpoints)).toEqual({ names });
  });

  it.each([
    ['the same string twice', '[a.example, b.example, a.example]', ['tls[0].endpoints[2]: duplicate endpoint "a.example:443" (same host, port and servername as endpoints[0]): remove one']],
    ['default port written out', '[a.example, "a.example:443"]', ['tls[0].endpoints[1]: duplicate endpoint "a.example:443" (same host, port and servername as endpoints[0]): remove one']],
    ['servername equal to the host', '[a.example, { host: a.example, servername: a.example }]', ['tls[0].endpoints[1]: duplicate endpoint "a.example:443" (same host, port and servername as endpoints[0]): remove one']],
    [
      'same host, port and servername as objects',
      '[{ host: 10.0.0.5, servername: www.example.test }, { host: 10.0.0.5, port: 443, servername: WWW.example.test }]',
      ['tls[0].endpoints[1]: duplicate endpoint "WWW.example.test@10.0.0.5:443" (same host, port and servername as endpoints[0]): remove one'],
    ],
  ])('duplicate endpoints are a config error naming the key path: %s', (_name, endpoints, problems) => {
    expect(load(endpoints)).toEqual({ problems });
  });

  it('the same endpoint in two targets is allowed (targets are separate scopes)', () => {
    const loaded = testConfig('tls:\n  - { name: a, endpoints: [x.example] }\n  - { name: b, endpoints: [x.example] }\n', probes);
    expect(loaded.config.tls.map((t) => t.endpoints[0]?.name)).toEqual(['x.example:443', 'x.example:443']);
  });
});

describe('TLS endpoint identity with invalid entries', () => {
  it('an invalid entry next to a duplicate pair reports both, without crashing', () => {
    // zod runs the duplicate check although entry 1 failed (its value is then undefined).
    expect(load('[a.example, { host: b.example, port: 70000 }, "a.example:443"]')).toEqual({
      problems: [
        'tls[0].endpoints[1].port: expected a number 1–65535',
        'tls[0].endpoints[2]: duplicate endpoint "a.example:443" (same host, port and servername as endpoints[0]): remove one',
      ],
    });
  });
});
