import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Transport } from '../../src/transport/transport.js';
import { connect, listen, parseAddress } from '../../src/transport/url.js';
import type { ListenOptions } from '../../src/transport/url.js';
import { makeTestPki } from './certs.js';
import { deferred, record } from './helpers.js';

void describe('addresses', () => {
  void it('parses each supported scheme', () => {
    assert.deepEqual(parseAddress('tcp://127.0.0.1:7400'), { scheme: 'tcp', host: '127.0.0.1', port: 7400 });
    assert.deepEqual(parseAddress('tls://[::1]:7401'), { scheme: 'tls', host: '::1', port: 7401 });
    assert.deepEqual(parseAddress('ws://localhost:8080/v1/atp'), { scheme: 'ws', host: 'localhost', port: 8080, path: '/v1/atp' });
    assert.deepEqual(parseAddress('wss://atp.example'), { scheme: 'wss', host: 'atp.example', port: 443, path: '/atp' });
    assert.deepEqual(parseAddress('memory://unit'), { scheme: 'memory', name: 'unit' });
  });

  void it('refuses malformed addresses and unknown schemes with a message that says what to write', () => {
    assert.throws(() => parseAddress('http://x'), {
      name: 'TypeError',
      message: "unsupported address scheme 'http:' in http://x; use tcp://, tls://, ws://, wss:// or memory://",
    });
    assert.throws(() => parseAddress('localhost:7400'), /^TypeError: invalid address 'localhost:7400': expected a URL such as tcp:/);
    assert.throws(() => parseAddress('not a url'), {
      name: 'TypeError',
      message: "invalid address 'not a url': expected a URL such as tcp://127.0.0.1:7400 (tcp://, tls://, ws://, wss:// or memory://)",
    });
    assert.throws(() => parseAddress('tcp://127.0.0.1'), { message: 'address tcp://127.0.0.1 has no port; write tcp://127.0.0.1:PORT' });
    assert.throws(() => parseAddress('tcp://127.0.0.1:7400/x'), /has a path/);
    assert.throws(() => parseAddress('tcp://127.0.0.1:99999'), /invalid address/);
    assert.throws(() => listen('tls://127.0.0.1:0', {}, () => {}), /needs options\.tls/);
  });
});

void describe('listen() and connect() by URL', () => {
  const pki = makeTestPki();
  const cases: { url: string; listen: ListenOptions; connect: Parameters<typeof connect>[1]; kind: Transport['kind'] }[] = [
    { url: 'tcp://127.0.0.1:0', listen: {}, connect: {}, kind: 'tcp' },
    {
      url: 'tls://127.0.0.1:0',
      listen: { tls: { key: pki.serverKey, cert: pki.serverCert } },
      connect: { tls: { ca: pki.ca } },
      kind: 'tls',
    },
    { url: 'ws://127.0.0.1:0/atp', listen: {}, connect: {}, kind: 'ws' },
    {
      url: 'wss://127.0.0.1:0/atp',
      listen: { tls: { key: pki.serverKey, cert: pki.serverCert } },
      connect: { tls: { ca: pki.ca } },
      kind: 'ws',
    },
    { url: 'memory://url-test', listen: {}, connect: {}, kind: 'memory' },
  ];
  for (const c of cases) {
    void it(`${c.url} listens, shows its real address, and carries bytes both ways`, async () => {
      const accepted = deferred<Transport>();
      const listener = await listen(c.url, c.listen, (transport) => accepted.resolve(transport));
      try {
        if (c.url.includes(':0')) assert.doesNotMatch(listener.url, /:0(\/|$)/);
        assert.equal(new URL(listener.url).protocol, new URL(c.url).protocol);
        const client = await connect(listener.url, c.connect);
        assert.equal(client.kind, c.kind);
        const server = await accepted.promise;
        record(server, (chunk) => server.write(chunk));
        const recorder = record(client);
        client.write(Uint8Array.of(1, 2, 3, 4));
        await recorder.received(4);
        assert.deepEqual([...recorder.bytes()], [1, 2, 3, 4]);
        client.end();
        assert.equal(await recorder.closed, undefined);
      } finally {
        await listener.close();
      }
    });
  }

  void it('connects ws:// without a path to the default path /atp', async () => {
    const accepted = deferred<Transport>();
    const listener = await listen('ws://127.0.0.1:0', {}, (transport) => accepted.resolve(transport));
    try {
      assert.match(listener.url, /\/atp$/);
      const client = await connect(listener.url.replace(/\/atp$/, ''));
      (await accepted.promise).destroy();
      client.destroy();
    } finally {
      await listener.close();
    }
  });
});
