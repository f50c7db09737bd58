import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { Listener, Transport } from '../../src/transport/transport.js';
import { connectWs, listenWs } from '../../src/transport/websocket.js';
import type { WsListenOptions } from '../../src/transport/websocket.js';
import { WebSocketCloseError } from '../../src/transport/ws-transport.js';
import { makeTestPki } from './certs.js';
import { transportContract } from './contract.js';
import { deferred, pattern, patternMismatch, record } from './helpers.js';

transportContract({
  name: 'ws',
  kind: 'ws',
  framed: true,
  peerSeesAbort: true,
  listen: (onAccept) => listenWs({ host: '127.0.0.1', port: 0 }, onAccept),
  connect: (url) => connectWs(url),
});

const KiB = 1024;

/** Listens with `options`; the test gets the accepted transports, refusals, and cleanup. */
async function endpoint(options: Partial<WsListenOptions> = {}): Promise<{
  listener: Listener;
  accepted: Transport[];
  acceptErrors: Error[];
  next: () => Promise<Transport>;
  [Symbol.asyncDispose]: () => Promise<void>;
}> {
  const accepted: Transport[] = [];
  const acceptErrors: Error[] = [];
  let waiter = deferred<Transport>();
  const listener = await listenWs(
    { host: '127.0.0.1', port: 0, ...options, onAcceptError: (error) => acceptErrors.push(error) },
    (transport) => {
      accepted.push(transport);
      waiter.resolve(transport);
    },
  );
  return {
    listener,
    accepted,
    acceptErrors,
    next: async () => {
      const transport = await waiter.promise;
      waiter = deferred<Transport>();
      return transport;
    },
    [Symbol.asyncDispose]: async () => {
      for (const transport of accepted) transport.destroy();
      await listener.close();
    },
  };
}

/** Opens a raw `ws` client, resolving once open or with the refusal. */
function rawClient(url: string, protocols: string[]): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      request.destroy();
    });
    ws.on('error', reject);
  });
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

void describe('websocket', () => {
  void it('closes with 1003 when the peer sends a text message', async () => {
    await using server = await endpoint();
    const opened = await rawClient(server.listener.url, ['atp.1']);
    assert.ok('ws' in opened);
    const serverRecorder = record(await server.next());
    const closed = closeOf(opened.ws);
    opened.ws.send('hello');
    assert.equal((await closed).code, 1003);
    const error = await serverRecorder.closed;
    assert.match(error?.message ?? '', /text WebSocket message/);
    assert.equal(serverRecorder.receivedBytes, 0);
  });

  void it('refuses an upgrade that does not offer subprotocol atp.1', async () => {
    await using server = await endpoint();
    assert.deepEqual(await rawClient(server.listener.url, []), { status: 400 });
    assert.deepEqual(await rawClient(server.listener.url, ['atp.2', 'mqtt']), { status: 400 });
    assert.equal(server.accepted.length, 0);
    assert.equal(server.acceptErrors.length, 2);
    assert.match(server.acceptErrors[0]?.message ?? '', /subprotocol 'atp\.1'/);
  });

  void it('fails to connect when the server does not select atp.1', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => false });
    await new Promise((resolve) => wss.once('listening', resolve));
    const url = `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/atp`;
    try {
      await assert.rejects(connectWs(url), {
        message: `cannot connect to ${url}: the server did not select the WebSocket subprotocol 'atp.1' (is it an ATP endpoint?)`,
      });
    } finally {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  void it('preserves message boundaries in both directions, empty messages included', async () => {
    await using server = await endpoint();
    const client = await connectWs(server.listener.url);
    const accepted = await server.next();
    const serverRecorder = record(accepted, (chunk) => accepted.write(chunk));
    const clientRecorder = record(client);
    const sizes = [1, 12, 0, 64 * KiB, 3, 1024 * KiB + 12, 5];
    let offset = 0;
    for (const size of sizes) {
      client.write(pattern(offset, size));
      offset += size;
    }
    await clientRecorder.received(offset);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      serverRecorder.chunks.map((chunk) => chunk.byteLength),
      sizes,
    );
    assert.deepEqual(
      clientRecorder.chunks.map((chunk) => chunk.byteLength),
      sizes,
    );
    assert.equal(patternMismatch(clientRecorder.bytes()), -1);
    client.end();
    assert.equal(await clientRecorder.closed, undefined);
  });

  void it('accepts a message of exactly 12 + maxFrameBytes and closes with 1009 on a larger one', async () => {
    await using server = await endpoint({ maxFrameBytes: 64 * KiB });
    const client = await connectWs(server.listener.url);
    const serverRecorder = record(await server.next());
    const clientRecorder = record(client);
    client.write(pattern(0, 64 * KiB + 12));
    await serverRecorder.received(64 * KiB + 12);
    client.write(pattern(0, 64 * KiB + 13));
    const clientError = await clientRecorder.closed;
    assert.ok(clientError instanceof WebSocketCloseError);
    assert.equal(clientError.closeCode, 1009);
    assert.match((await serverRecorder.closed)?.message ?? '', /max payload/i);
    assert.equal(serverRecorder.chunks.length, 1);
  });

  void it('end(code, reason) sends that close code and cuts the reason to 123 bytes of whole characters', async () => {
    await using server = await endpoint();
    const first = await rawClient(server.listener.url, ['atp.1']);
    assert.ok('ws' in first);
    const firstClosed = closeOf(first.ws);
    const firstServer = await server.next();
    const firstRecorder = record(firstServer);
    firstServer.end(4003, 'x'.repeat(200));
    assert.deepEqual(await firstClosed, { code: 4003, reason: 'x'.repeat(123) });
    assert.equal(await firstRecorder.closed, undefined);

    const second = await rawClient(server.listener.url, ['atp.1']);
    assert.ok('ws' in second);
    const secondClosed = closeOf(second.ws);
    const secondServer = await server.next();
    record(secondServer);
    assert.throws(() => secondServer.end(1006), RangeError);
    secondServer.end(1000, 'é'.repeat(100));
    assert.deepEqual(await secondClosed, { code: 1000, reason: 'é'.repeat(61) });
  });

  void it('refuses an upgrade from an origin that verifyOrigin rejects', async () => {
    await using server = await endpoint({ verifyOrigin: (origin) => origin === 'https://good.example' });
    await assert.rejects(connectWs(server.listener.url, { origin: 'https://evil.example' }), /refused the WebSocket upgrade \(HTTP 403/);
    const client = await connectWs(server.listener.url, { origin: 'https://good.example' });
    client.destroy();
    assert.equal(server.accepted.length, 1);
  });

  void it('refuses upgrades on other paths with 404 and answers plain HTTP with 426', async () => {
    await using server = await endpoint({ path: '/atp' });
    const other = server.listener.url.replace(/\/atp$/, '/other');
    await assert.rejects(connectWs(other), (error: Error) => {
      assert.equal(
        error.message,
        `cannot connect to ${other}: the server refused the WebSocket upgrade (HTTP 404: no ATP endpoint at /other; use /atp)`,
      );
      return true;
    });
    const response = await fetch(server.listener.url.replace(/^ws:/, 'http:'));
    assert.equal(response.status, 426);
    await response.text();
  });

  void it('names the address when nothing listens', async () => {
    const { listener } = await endpoint();
    await listener.close();
    await assert.rejects(connectWs(listener.url), {
      message: `cannot connect to ${listener.url}: connection refused (is the coordinator running?)`,
    });
  });

  void it('attaches to a caller-owned HTTP server and leaves it running when closed', async () => {
    const httpServer = http.createServer((_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    try {
      const accepted = deferred<Transport>();
      const listener = await listenWs({ server: httpServer, path: '/v1/atp' }, (transport) => accepted.resolve(transport));
      const port = (httpServer.address() as net.AddressInfo).port;
      assert.equal(listener.url, `ws://127.0.0.1:${port}/v1/atp`);
      const client = await connectWs(listener.url);
      const serverTransport = await accepted.promise;
      record(serverTransport, (chunk) => serverTransport.write(chunk));
      const clientRecorder = record(client);
      client.write(Uint8Array.of(1, 2, 3));
      await clientRecorder.received(3);
      await listener.close();
      assert.equal(httpServer.listenerCount('upgrade'), 0);
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok');
      client.end();
      assert.equal(await clientRecorder.closed, undefined);
    } finally {
      httpServer.closeAllConnections();
      httpServer.close();
    }
  });

  void it('serves wss:// with a TLS identity', async () => {
    const pki = makeTestPki();
    await using server = await endpoint({ tls: { key: pki.serverKey, cert: pki.serverCert } });
    assert.match(server.listener.url, /^wss:\/\/127\.0\.0\.1:\d+\/atp$/);
    const client = await connectWs(server.listener.url, { ca: pki.ca });
    const accepted = await server.next();
    record(accepted, (chunk) => accepted.write(chunk));
    const clientRecorder = record(client);
    client.write(pattern(0, 1000));
    await clientRecorder.received(1000);
    assert.equal(patternMismatch(clientRecorder.bytes()), -1);
    client.end();
    assert.equal(await clientRecorder.closed, undefined);
  });
});
