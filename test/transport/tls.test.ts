import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { connectTls, listenTls } from '../../src/transport/tls.js';
import type { TlsClientOptions } from '../../src/transport/tls.js';
import type { Listener, Transport } from '../../src/transport/transport.js';
import { makeTestPki } from './certs.js';
import { transportContract } from './contract.js';
import { deferred, record } from './helpers.js';

const pki = makeTestPki();
const serverIdentity = { key: pki.serverKey, cert: pki.serverCert };

function portOf(listener: Listener): number {
  return Number(new URL(listener.url).port);
}

function connectTo(listener: Listener, options: TlsClientOptions = { ca: pki.ca }): Promise<Transport> {
  return connectTls({ host: '127.0.0.1', port: portOf(listener), ...options });
}

transportContract({
  name: 'tls',
  kind: 'tls',
  framed: false,
  // A destroyed TLS socket ends without close_notify; Node reports that as a plain end of stream.
  peerSeesAbort: false,
  listen: (onAccept) => listenTls({ host: '127.0.0.1', port: 0, ...serverIdentity }, onAccept),
  connect: (url) => connectTls({ host: '127.0.0.1', port: Number(new URL(url).port), ca: pki.ca }),
});

/** Opens a raw node:tls connection offering `alpn` and reports what was negotiated, or the error. */
function rawHandshake(listener: Listener, alpn: string[] | undefined): Promise<{ alpn: string | false } | { error: Error }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: portOf(listener),
      ca: pki.ca,
      ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
    });
    socket.on('secureConnect', () => {
      resolve({ alpn: socket.alpnProtocol ?? false });
      socket.end();
    });
    socket.on('error', (error: Error) => resolve({ error }));
  });
}

void describe('tls', () => {
  void it('negotiates ALPN atp/1 with a client that offers it', async () => {
    const accepted = deferred<Transport>();
    const listener = await listenTls({ host: '127.0.0.1', port: 0, ...serverIdentity }, (transport) => accepted.resolve(transport));
    try {
      assert.deepEqual(await rawHandshake(listener, ['h2', 'atp/1']), { alpn: 'atp/1' });
      (await accepted.promise).destroy();
    } finally {
      await listener.close();
    }
  });

  void it('refuses a client that offers ALPN without atp/1, and accepts one that offers no ALPN', async () => {
    const acceptErrors: Error[] = [];
    let accepts = 0;
    const listener = await listenTls(
      { host: '127.0.0.1', port: 0, ...serverIdentity, onAcceptError: (error) => acceptErrors.push(error) },
      (transport) => {
        accepts++;
        record(transport);
      },
    );
    try {
      const refused = await rawHandshake(listener, ['h2', 'http/1.1']);
      assert.ok('error' in refused);
      assert.match((refused.error as { code?: string }).code ?? '', /NO_APPLICATION_PROTOCOL/);
      assert.equal(accepts, 0);
      assert.equal(acceptErrors.length, 1);
      assert.match(acceptErrors[0]?.message ?? '', /TLS handshake .* failed/);
      assert.deepEqual(await rawHandshake(listener, undefined), { alpn: false });
    } finally {
      await listener.close();
    }
  });

  void it('offers ALPN atp/1 when connecting', async () => {
    const negotiated = deferred<string | false>();
    const server = tls.createServer({ ...serverIdentity, ALPNProtocols: ['atp/1'] }, (socket) => {
      negotiated.resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = await connectTls({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ca: pki.ca });
      record(client);
      assert.equal(await negotiated.promise, 'atp/1');
      client.destroy();
    } finally {
      server.close();
    }
  });

  void it('with mutual TLS, accepts a client certificate signed by the CA and refuses a client without one', async () => {
    const acceptErrors: Error[] = [];
    const accepted: Transport[] = [];
    const listener = await listenTls(
      { host: '127.0.0.1', port: 0, ...serverIdentity, ca: pki.ca, requestCert: true, onAcceptError: (error) => acceptErrors.push(error) },
      (transport) => {
        accepted.push(transport);
        record(transport, (chunk) => transport.write(chunk));
      },
    );
    try {
      const withCert = await connectTo(listener, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
      const recorder = record(withCert);
      withCert.write(Uint8Array.of(7));
      await recorder.received(1);
      withCert.end();
      assert.equal(await recorder.closed, undefined);
      assert.equal(accepted.length, 1);

      // In TLS 1.3 the client may finish its half of the handshake before the server refuses it,
      // so the refusal shows either as a rejected connect or as a close with an error.
      let refusal: Error | undefined;
      try {
        const withoutCert = await connectTo(listener);
        refusal = await record(withoutCert).closed;
      } catch (error) {
        refusal = error as Error;
      }
      assert.ok(refusal instanceof Error, 'the client without a certificate is told with an error');
      assert.equal(accepted.length, 1, 'the client without a certificate is never accepted');
      assert.equal(acceptErrors.length, 1);
    } finally {
      await listener.close();
    }
  });

  void it('refuses a server whose certificate the client does not trust, naming the address', async () => {
    const listener = await listenTls({ host: '127.0.0.1', port: 0, ...serverIdentity }, (transport) => transport.destroy());
    try {
      await assert.rejects(connectTo(listener, { ca: pki.otherCa }), (error: Error) => {
        assert.match(
          error.message,
          new RegExp(`^cannot connect to tls://127\\.0\\.0\\.1:${portOf(listener)}: server certificate rejected`),
        );
        return true;
      });
    } finally {
      await listener.close();
    }
  });

  void it('names the address when the port speaks plain TCP instead of TLS', async () => {
    const server = net.createServer((socket) => socket.end('ATP1\r\n\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await assert.rejects(connectTls({ host: '127.0.0.1', port, ca: pki.ca }), (error: Error) => {
        assert.ok(error.message.startsWith(`cannot connect to tls://127.0.0.1:${port}: `), error.message);
        return true;
      });
    } finally {
      server.close();
    }
  });
});
