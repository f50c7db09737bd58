/**
 * The coordinator: accepts connections, runs the handshake, routes each frame to its handler,
 * grants leases against credits, keeps lease expiry on one timer heap (session-level renewal),
 * revokes with a deadline, and fans events out to watchers. It never runs user code.
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { AtpError, wireCodeOf } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { IdGenerator, ZERO_ID, equalBytes, fromHex, hexInto, randomId, sha256, toHex } from '../internal/ids.js';
import { TimerHeap } from '../internal/timer-heap.js';
import { Channel, truncate } from '../protocol/channel.js';
import { MessageBudget } from '../protocol/message-budget.js';
import type { ArtifactResult, ArtifactView, ExternalEvent, Grant, RevokeOrder, Store } from '../store/store.js';
import { listen } from '../transport/url.js';
import type { ListenOptions } from '../transport/url.js';
import type { Listener, Transport } from '../transport/transport.js';
import { Capability, GoawayMode, Limits, PROTOCOL_VERSION, REVOKE_ENTRY_BYTES, Role, specOf } from '../wire/index.js';
import type { Message, MessageOf } from '../wire/index.js';
import type { Core } from './core.js';
import { resolveOptions } from './options.js';
import type { CoordinatorOptions, ResolvedOptions } from './options.js';
import { SubmitBatcher, handleCancel, handleQuery, handleUnwatch, handleWatch } from './producer-handlers.js';
import { ServerSession } from './session.js';
import { ownedBytes } from '../internal/bytes.js';
import type { HeldLease, RevokeBatch, Revoking } from './session.js';
import { WatchHub } from './watch-hub.js';
import {
  handleCheckpoint,
  handleComplete,
  handleCredit,
  handleFail,
  handlePartial,
  handleRelease,
  handleRenew,
  handleRevokeAck,
  sendLeaseLost,
} from './worker-handlers.js';

/** Diagnostics channel on which the coordinator publishes `{ event, ...detail }` records. */
export const COORDINATOR_DIAGNOSTICS = 'atp:coordinator';
const diag = diagnosticsChannel(COORDINATOR_DIAGNOSTICS);
/** A batch of revokes is written to its worker every this many frames, not only at the end. */
const REVOKE_FLUSH_EVERY = 256;
/** Optional features this coordinator agrees to (ATP_REGISTRY §5). */
const SUPPORTED_CAPABILITIES: ReadonlySet<string> = new Set([Capability.REVOKE_BATCH]);
/** Scratch bytes for the ids of a frame encoded at once by Channel.send (REVOKE, LEASE). */
const REVOKE_LEASE_ID = new Uint8Array(16);
const REVOKE_ARTIFACT_ID = new Uint8Array(16);
const LEASE_LEASE_ID = new Uint8Array(16);
const LEASE_ARTIFACT_ID = new Uint8Array(16);
const LEASE_PARENT_ID = new Uint8Array(16);
const LEASE_DIGEST = new Uint8Array(32);

const WORKER_FRAMES = new Set(['CREDIT', 'RENEW', 'PARTIAL', 'CHECKPOINT', 'COMPLETE', 'FAIL', 'RELEASE', 'REVOKE_ACK']);

/** Terminal artifacts forgotten per store call (ATP_SPEC §3.11). */
const FORGET_BATCH = 10_000;

/** A running coordinator. */
export class Coordinator implements Core {
  readonly options: ResolvedOptions;
  readonly store: Store;
  readonly timers: TimerHeap;
  readonly watches = new WatchHub();
  /** Memory for fragmented messages being received, shared by every connection (ATP-4.5-10). */
  readonly messageBudget: MessageBudget;
  readonly #sessions = new Map<string, ServerSession>();
  readonly #channels = new Set<Channel>();
  readonly #listeners: Listener[] = [];
  readonly #hungry = new Map<string, Set<ServerSession>>();
  readonly #dispatchQueue = new Set<ServerSession>();
  readonly #leaseIds = new IdGenerator();
  readonly #submits: SubmitBatcher;
  #dispatchScheduled = false;
  #started = false;
  #closing = false;

  constructor(options: CoordinatorOptions = {}) {
    this.options = resolveOptions(options);
    this.store = this.options.store;
    this.timers = new TimerHeap(this.options.clock);
    this.messageBudget = new MessageBudget(this.options.messageBudgetBytes);
    this.#submits = new SubmitBatcher(this);
  }

  /** Open the store and recover: leases held at a crash wait for their workers for one resume window. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.store.open();
    const now = this.now();
    const sessions = await this.store.loadSessions();
    const held = await this.store.heldLeases();
    for (const rec of sessions) {
      const s = new ServerSession({
        id: rec.sessionId,
        token: fromHex(rec.tokenHash),
        nodeId: rec.nodeId,
        tenant: rec.tenant,
        roles: rec.roles,
        kinds: new Set(),
        now,
        clientMaxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
      });
      this.#sessions.set(s.id, s);
    }
    const orphans = [];
    for (const lease of held) {
      const s = this.#sessions.get(lease.sessionId);
      if (s === undefined) orphans.push({ leaseId: lease.leaseId, epoch: lease.epoch, sessionId: lease.sessionId });
      else
        s.leases.set(lease.leaseId, {
          lease: { ...lease, grantedAt: Math.min(lease.grantedAt, now) },
          renewedAt: now,
          maxDurationTimer: undefined,
          confirmed: true,
        });
    }
    if (orphans.length > 0) await this.#loseAndReport(orphans, 'ATP_ERR_LEASE_EXPIRED');
    for (const s of this.#sessions.values()) this.#detach(s, 'recovered after a coordinator restart');
    for (const d of await this.store.pendingDeadlines()) this.armDeadline(d.tenant, d.id, d.deadlineAt);
    this.store.subscribe?.((ev) => this.#external(ev));
    if (this.store.maintain !== undefined) this.#maintain();
    if (this.options.retainMs !== Infinity) this.#sweep();
    this.emit('started', { store: this.store.name, sessions: sessions.length, leases: held.length });
  }

  /** Listen on a URL (tcp://, tls://, ws://, memory://); returns the listener. */
  async listen(url: string, options: ListenOptions = {}): Promise<Listener> {
    await this.start();
    const l = await listen(url, { ...options, maxFrameBytes: this.options.maxFrameBytes }, (t) => this.accept(t));
    this.#listeners.push(l);
    this.emit('listening', { url: l.url });
    return l;
  }

  /** Take over an accepted connection. */
  accept(transport: Transport): void {
    if (this.#closing) {
      transport.destroy();
      return;
    }
    const ch = new Channel(transport, {
      side: 'coordinator',
      clock: this.options.clock,
      maxMessageBytes: this.options.maxMessageBytes,
      budget: this.messageBudget,
      ...(this.options.minMessageBytesPerSecond > 0
        ? { minMessageRate: { bytesPerSecond: this.options.minMessageBytesPerSecond, graceMs: this.options.minMessageRateGraceMs } }
        : {}),
    });
    this.#channels.add(ch);
    let session: ServerSession | undefined;
    let helloSeen = false;
    const handshake = this.options.clock.setTimer(this.options.handshakeTimeoutMs, () => {
      if (session === undefined)
        ch.fail(new AtpError('ATP_ERR_HANDSHAKE_TIMEOUT', `no HELLO within ${this.options.handshakeTimeoutMs} ms`));
    });
    ch.start({
      message: (msg) => {
        if (session === undefined) {
          if (msg.type === 'PING') return ch.send({ type: 'PONG', stream: msg.stream, nonce: msg.nonce });
          if (msg.type !== 'HELLO')
            return ch.fail(new AtpError('ATP_ERR_PROTOCOL', `${msg.type} before ${helloSeen ? 'WELCOME' : 'HELLO'}`));
          // ATP_SPEC §4.2: a second HELLO is fatal, also one pipelined behind the first before WELCOME.
          if (helloSeen) return ch.fail(new AtpError('ATP_ERR_PROTOCOL', 'a second HELLO'));
          helloSeen = true;
          handshake.cancel();
          this.#hello(ch, msg).then(
            (s) => {
              session = s;
              if (ch.closed && s.channel === ch) this.#detach(s, 'connection closed during the handshake');
            },
            (err: unknown) => ch.fail(err instanceof AtpError ? err : new AtpError('ATP_ERR_INTERNAL', String(err))),
          );
          return;
        }
        this.#route(session, msg);
      },
      closed: (err) => {
        handshake.cancel();
        this.#channels.delete(ch);
        if (session !== undefined && session.channel === ch) this.#detach(session, err?.message ?? 'connection closed');
      },
    });
  }

  // ---- handshake (ATP_SPEC §4.1) -------------------------------------------------------------

  async #hello(ch: Channel, hello: MessageOf<'HELLO'>): Promise<ServerSession> {
    const o = this.options;
    if (hello.minVersion > PROTOCOL_VERSION || hello.maxVersion < PROTOCOL_VERSION) {
      throw new AtpError(
        'ATP_ERR_UNSUPPORTED_VERSION',
        `versions ${hello.minVersion}-${hello.maxVersion} offered; this coordinator speaks ${PROTOCOL_VERSION}`,
      );
    }
    if (hello.roles === 0 || (hello.roles & ~7) !== 0)
      throw new AtpError('ATP_ERR_PARAM', `roles ${hello.roles} must be a non-empty set of 1 worker, 2 producer, 4 observer`);
    if (hello.maxFrameBytes < Limits.MIN_MAX_FRAME_BYTES || hello.maxFrameBytes > Limits.MAX_MAX_FRAME_BYTES) {
      throw new AtpError(
        'ATP_ERR_PARAM',
        `maxFrameBytes ${hello.maxFrameBytes} is outside [${Limits.MIN_MAX_FRAME_BYTES}, ${Limits.MAX_MAX_FRAME_BYTES}]`,
      );
    }
    // ATP_SPEC §4.6: without tokens every session is of the tenant "", and may not name another.
    if (o.tokens === undefined && hello.tenant !== undefined && hello.tenant !== '')
      throw new AtpError('ATP_ERR_FORBIDDEN', 'this coordinator has no tenants');
    let tenant = '';
    let allowed = 7;
    if (o.tokens !== undefined) {
      if (hello.authToken === undefined) throw new AtpError('ATP_ERR_UNAUTHORIZED', 'this coordinator requires an auth token');
      const presented = Buffer.from(hello.authToken);
      let grant;
      for (const [token, g] of o.tokens) if (equalBytes(Buffer.from(token), presented)) grant = g;
      if (grant === undefined) throw new AtpError('ATP_ERR_AUTH_FAILED', 'the auth token was refused');
      if (hello.tenant !== undefined && hello.tenant !== grant.tenant)
        throw new AtpError('ATP_ERR_FORBIDDEN', `the token does not grant tenant ${JSON.stringify(hello.tenant)}`);
      tenant = grant.tenant;
      allowed = grant.roles;
    }
    if ((hello.roles & ~allowed) !== 0) throw new AtpError('ATP_ERR_FORBIDDEN', `roles ${hello.roles} requested, ${allowed} allowed`);
    const now = this.now();
    let s: ServerSession | undefined;
    let resumed = false;
    let token: Uint8Array;
    if (hello.resumeSessionId !== undefined && hello.resumeToken !== undefined) {
      let old = this.#sessions.get(toHex(hello.resumeSessionId));
      if (old === undefined && this.store.adoptSession !== undefined)
        old = await this.#adopt(toHex(hello.resumeSessionId), sha256(hello.resumeToken), now);
      // The stored token is its hash: compare hashes in constant time (ATP_SPEC §13).
      if (old !== undefined && equalBytes(old.token, sha256(hello.resumeToken)) && old.nodeId === toHex(hello.nodeId)) {
        s = old;
        resumed = true;
        const prev = old.channel;
        old.channel = ch; // before closing the old connection, so that its close does not detach the session
        if (prev !== undefined && prev !== ch && !prev.closed)
          prev.close('ATP_ERR_SESSION_REPLACED', 'the session was resumed on another connection');
        old.resumeTimer?.cancel();
        old.resumeTimer = undefined;
      }
    }
    if (s === undefined) {
      token = randomId(32);
      s = new ServerSession({
        id: toHex(randomId(16)),
        token: sha256(token),
        nodeId: toHex(hello.nodeId),
        tenant,
        roles: hello.roles,
        kinds: new Set(hello.kinds),
        now,
        clientMaxFrameBytes: hello.maxFrameBytes,
      });
      this.#sessions.set(s.id, s);
      if ((hello.roles & Role.WORKER) !== 0)
        await this.store.saveSession({ sessionId: s.id, tokenHash: toHex(s.token), nodeId: s.nodeId, tenant, roles: hello.roles });
    } else {
      // A new resume token with every WELCOME; the old one is void (ATP_SPEC §4.2, §11.6).
      token = randomId(32);
      s.token = sha256(token);
      if ((s.roles & Role.WORKER) !== 0)
        await this.store.saveSession({ sessionId: s.id, tokenHash: toHex(s.token), nodeId: s.nodeId, tenant: s.tenant, roles: s.roles });
      // A session recovered after a restart learns its kinds again from the new HELLO.
      if (s.kinds.size === 0) for (const k of hello.kinds) (s.kinds as Set<string>).add(k);
    }
    if (resumed) {
      // ATP_SPEC §11.6: until the worker names a lease again, it runs on its own last renewal.
      for (const h of s.leases.values()) {
        h.renewedAt = Math.max(h.renewedAt, h.confirmed ? s.lastRenewAt : 0);
        h.confirmed = false;
      }
    }
    s.channel = ch;
    s.credits = hello.credits;
    s.lastRenewAt = now;
    const idle = Math.min(...[hello.idleTimeoutMs, o.idleTimeoutMs].filter((v) => v > 0));
    // ATP_REGISTRY §5: a capability is on for this connection when both sides list it.
    const capabilities = hello.capabilities.filter((c) => SUPPORTED_CAPABILITIES.has(c));
    s.revokeBatch = capabilities.includes(Capability.REVOKE_BATCH);
    ch.send({
      type: 'WELCOME',
      stream: 0,
      version: PROTOCOL_VERSION,
      roles: s.roles,
      resumed: resumed ? 1 : 0,
      sessionId: fromHex(s.id),
      resumeToken: token,
      // Clients keep the session alive every heartbeat: at least three times per idle timeout (ATP_SPEC §4.8).
      heartbeatMs: Number.isFinite(idle) ? Math.max(1, Math.min(o.heartbeatMs, Math.floor(idle / 3))) : o.heartbeatMs,
      idleTimeoutMs: Number.isFinite(idle) ? idle : 0,
      maxFrameBytes: o.maxFrameBytes,
      resumeWindowMs: o.resumeWindowMs,
      cancelDeadlineMs: o.cancelDeadlineMs,
      agent: o.agent,
      capabilities,
    });
    ch.setMaxFrameBytes(o.maxFrameBytes);
    if (Number.isFinite(idle)) ch.setIdleTimeout(idle);
    this.emit('session', { sessionId: s.id, nodeId: s.nodeId, roles: s.roles, resumed, remote: ch.transport.remote });
    if (resumed) {
      // Revokes that were due while detached are sent again.
      const again = [...s.revoking.values()].map((r) => ({ lease: r.lease, code: r.code, reason: 'revoked while disconnected' }));
      for (let from = 0; from < again.length; from += REVOKE_FLUSH_EVERY) {
        this.#sendRevokes(s, again, from, Math.min(again.length, from + REVOKE_FLUSH_EVERY));
      }
      this.armExpiry(s);
    }
    this.dispatch(s);
    return s;
  }

  // ---- several coordinators on one shared store (ATP_SPEC §11.8) ----------------------------------

  /** A worker resumes here a session that another (perhaps dead) coordinator held. */
  async #adopt(sessionId: string, tokenHash: Uint8Array, now: number): Promise<ServerSession | undefined> {
    const got = await this.store.adoptSession!(sessionId, toHex(tokenHash), now);
    if (got === undefined) return undefined;
    const s = new ServerSession({
      id: got.session.sessionId,
      token: fromHex(got.session.tokenHash),
      nodeId: got.session.nodeId,
      tenant: got.session.tenant,
      roles: got.session.roles,
      kinds: new Set(),
      now,
      clientMaxFrameBytes: Limits.DEFAULT_MAX_FRAME_BYTES,
    });
    // Like leases recovered after a restart: kept only once the worker names them (ATP_SPEC §11.6).
    for (const lease of got.leases) s.leases.set(lease.leaseId, { lease, renewedAt: now, maxDurationTimer: undefined, confirmed: false });
    this.#sessions.set(s.id, s);
    this.emit('adopted', { sessionId: s.id, leases: got.leases.length });
    return s;
  }

  /** Act on what another coordinator decided: watchers here, leases held here, hungry workers here. */
  #external(ev: ExternalEvent): void {
    if (this.#closing) return;
    switch (ev.kind) {
      case 'pending':
        for (const k of ev.kinds) this.wake(ev.tenant, k);
        return;
      case 'revoke': {
        const s = this.#sessions.get(ev.lease.sessionId);
        if (s !== undefined && s.leases.has(ev.lease.leaseId)) this.revoke([{ lease: ev.lease, code: ev.code, reason: ev.reason }]);
        return;
      }
      case 'changed':
        this.#refresh(ev.tenant, ev.id);
        return;
      case 'resync': {
        // Events may have been missed (the store's notification channel was down): read again what
        // this coordinator's watchers wait for, and let its idle workers look for work again.
        for (const [tenant, id] of [...this.watches.watchedArtifacts()]) this.#refresh(tenant, id);
        for (const set of this.#hungry.values()) for (const s of set) this.dispatch(s);
        this.#revokeEndedElsewhere();
        this.emit('resync', {});
        return;
      }
    }
  }

  /**
   * After a resync: a lease held here that the store no longer has was ended by another
   * coordinator (a cancel, a failure, an expiry) whose REVOKE may have been missed. Revoke it, so
   * that its handler stops now instead of running until its result is refused as stale. Only leases
   * held both before and after the read are revoked; one whose COMPLETE is in flight may still be
   * among them, and its REVOKE is then acknowledged or fenced like any other, changing nothing.
   */
  #revokeEndedElsewhere(): void {
    const before = new Set<HeldLease>();
    for (const s of this.#sessions.values()) for (const h of s.leases.values()) before.add(h);
    if (before.size === 0) return;
    this.store.heldLeases().then(
      (held) => {
        const current = new Set(held.map((l) => l.leaseId));
        const orders: RevokeOrder[] = [];
        for (const s of this.#sessions.values())
          for (const h of s.leases.values())
            if (before.has(h) && !current.has(h.lease.leaseId))
              orders.push({ lease: h.lease, code: 'ATP_ERR_STALE_LEASE', reason: 'the lease was ended by another coordinator' });
        if (orders.length > 0) this.revoke(orders);
      },
      (err: unknown) => this.fault('resync', err),
    );
  }

  /** Publish an artifact's current state, as the store has it, to the watchers here. */
  #refresh(tenant: string, id: string): void {
    this.store.get(tenant, id).then(
      async (view) => {
        if (view === undefined) return;
        const terminal = view.state !== 'PENDING' && view.state !== 'LEASED';
        this.publish(view, terminal ? await this.store.result(tenant, id) : undefined);
      },
      (err: unknown) => this.fault('external change', err),
    );
  }

  /**
   * Heartbeat the shared store every tick, and take back the leases of coordinators that died: the
   * upkeep runs one at a time, and a slow one (waiting for a lock) never holds the heartbeat back.
   */
  #maintain(): void {
    const every = Math.max(50, Math.floor(this.options.resumeWindowMs / 2));
    let upkeep = false;
    const tick = () => {
      if (this.#closing) return;
      this.store.heartbeat?.(this.now()).catch((err: unknown) => this.fault('heartbeat', err));
      if (!upkeep) {
        upkeep = true;
        void this.#upkeep().finally(() => (upkeep = false));
      }
      this.timers.at(this.now() + every, tick);
    };
    this.timers.at(this.now() + every, tick);
  }

  /** Terminal artifacts forgotten after their retention since this coordinator started (ATP_SPEC §3.11). */
  forgotten = 0;

  /**
   * ATP_SPEC §3.11: forget the terminal artifacts whose retention has passed, a tenth of the
   * retention after they are due at the latest (every second to every minute), FORGET_BATCH at a
   * time so that a backlog (a first sweep after an upgrade) does not hold the event loop.
   */
  #sweep(): void {
    const retain = this.options.retainMs;
    const every = Math.min(60_000, Math.max(1_000, Math.floor(retain / 10)));
    const tick = async (): Promise<void> => {
      for (let round = 0; round < 10 && !this.#closing; round++) {
        const n = await this.store.forget(this.now() - retain, FORGET_BATCH);
        this.forgotten += n;
        if (n > 0) this.emit('forgotten', { artifacts: n });
        if (n < FORGET_BATCH) break;
      }
    };
    const schedule = () => {
      if (this.#closing) return;
      this.timers.at(this.now() + every, () => {
        if (this.#closing) return;
        tick().then(schedule, (err: unknown) => {
          // A store closed under a sweep by close() is no fault.
          if (!this.#closing) this.fault('forget', err);
          schedule();
        });
      });
    };
    schedule();
  }

  #upkeep(): Promise<void> {
    // The worker sessions this coordinator serves, as far as the store has them: welcomed ones, and
    // detached ones still holding leases (a new one is in the store only once it is welcomed).
    const own: string[] = [];
    for (const s of this.#sessions.values())
      if ((s.roles & Role.WORKER) !== 0 && (s.channel !== undefined || s.leases.size > 0 || s.revoking.size > 0)) own.push(s.id);
    return this.store.maintain!(this.now(), this.options.resumeWindowMs, own).then(
      ({ lost, gone }) => {
        for (const id of gone) {
          const s = this.#sessions.get(id);
          if (s !== undefined) this.#disown(s);
        }
        for (const o of lost) {
          this.emit('lease-lost', {
            leaseId: o.lease.leaseId,
            artifactId: o.lease.artifactId,
            epoch: o.lease.epoch,
            sessionId: o.lease.sessionId,
            code: 'ATP_ERR_LEASE_EXPIRED',
            reclaimed: true,
          });
          if (o.changed !== undefined) this.#afterChange(o.changed.view, o.changed.result, o.changed.revoke);
        }
      },
      (err: unknown) => this.fault('maintain', err),
    );
  }

  /**
   * Another coordinator took this session while this one was silent (ATP_SPEC ATP-11.8-6): its
   * leases were lost there, and grants under it are fenced. End it here, and close its connection
   * so that the worker says HELLO again and gets a session this coordinator owns.
   */
  #disown(s: ServerSession): void {
    const ch = s.channel;
    s.channel = undefined; // so that the close below does not detach it
    this.emit('disowned', { sessionId: s.id, leases: s.leases.size });
    this.endSession(s, 'lose');
    if (ch !== undefined && !ch.closed)
      ch.close('ATP_ERR_LEASE_EXPIRED', 'another coordinator took over this session while this one was silent; say HELLO again');
  }

  // ---- routing -------------------------------------------------------------------------------

  #route(s: ServerSession, msg: Message): void {
    const ch = s.channel;
    if (ch === undefined) return;
    const spec = specOf(msg.type);
    if (spec.sender === 'coordinator') return ch.fail(new AtpError('ATP_ERR_PROTOCOL', `${msg.type} is sent only by a coordinator`));
    if (WORKER_FRAMES.has(msg.type) && (s.roles & Role.WORKER) === 0) {
      return ch.sendError(msg.stream, 'ATP_ERR_FORBIDDEN', `${msg.type} needs the worker role`, spec.code);
    }
    switch (msg.type) {
      case 'HELLO':
        return ch.fail(new AtpError('ATP_ERR_PROTOCOL', 'a second HELLO'));
      case 'PING':
        return this.#ping(s, msg);
      case 'PONG':
      case 'ERROR':
        return;
      case 'GOAWAY':
        return this.#goaway(s, msg);
      case 'SUBMIT':
      case 'CANCEL':
        if ((s.roles & Role.PRODUCER) === 0)
          return ch.sendError(msg.stream, 'ATP_ERR_FORBIDDEN', `${msg.type} needs the producer role`, spec.code);
        return msg.type === 'SUBMIT' ? this.#submits.submit(s, msg) : handleCancel(this, s, msg);
      case 'WATCH':
      case 'UNWATCH':
      case 'QUERY':
        if ((s.roles & (Role.PRODUCER | Role.OBSERVER)) === 0)
          return ch.sendError(msg.stream, 'ATP_ERR_FORBIDDEN', `${msg.type} needs the observer or producer role`, spec.code);
        return msg.type === 'WATCH'
          ? handleWatch(this, s, msg)
          : msg.type === 'UNWATCH'
            ? handleUnwatch(this, s, msg)
            : handleQuery(this, s, msg);
      case 'CREDIT':
        return handleCredit(this, s, msg);
      case 'RENEW':
        return handleRenew(this, s, msg);
      case 'PARTIAL':
        return handlePartial(this, s, msg);
      case 'CHECKPOINT':
        return handleCheckpoint(this, s, msg);
      case 'COMPLETE':
        return handleComplete(this, s, msg);
      case 'FAIL':
        return handleFail(this, s, msg);
      case 'RELEASE':
        return handleRelease(this, s, msg);
      case 'REVOKE_ACK':
        return handleRevokeAck(this, s, msg);
      default:
        return ch.fail(new AtpError('ATP_ERR_PROTOCOL', `${msg.type} is not sent by clients`));
    }
  }

  #ping(s: ServerSession, msg: MessageOf<'PING'>): void {
    const now = this.now();
    if (now - s.pingWindowStart >= 1000) {
      s.pingWindowStart = now;
      s.pings = 0;
    }
    if (++s.pings > 10) return s.channel?.fail(new AtpError('ATP_ERR_ENHANCE_YOUR_CALM', 'more than 10 PINGs per second'));
    s.channel?.send({ type: 'PONG', stream: msg.stream, nonce: msg.nonce });
  }

  /** GOAWAY from a client (ATP_SPEC §11.2): drain or leave. */
  #goaway(s: ServerSession, msg: MessageOf<'GOAWAY'>): void {
    if (msg.mode === GoawayMode.DRAIN_FINISH || msg.mode === GoawayMode.DRAIN_HANDBACK) {
      this.#startDrain(s, msg.mode, msg.deadlineMs || this.options.drainDeadlineMs, false);
      // The ACK says that no lease will be granted any more (ATP_SPEC §11.2).
      s.channel?.send({ type: 'ACK', stream: msg.stream, ackedType: 0x0005, subject: new Uint8Array(16) });
      return;
    }
    // A graceful leave: held leases are released at once, no resume window (ATP_SPEC §11.3).
    this.endSession(s, 'release');
    s.channel?.close('ATP_ERR_NONE', 'goodbye');
  }

  /** Ask a worker session to drain (ATP_SPEC §11.2). */
  drainSession(sessionId: string, mode: 1 | 2, deadlineMs = this.options.drainDeadlineMs): boolean {
    const s = this.#sessions.get(sessionId);
    if (s === undefined || !s.connected) return false;
    this.#startDrain(s, mode, deadlineMs, true);
    return true;
  }

  #startDrain(s: ServerSession, mode: number, deadlineMs: number, notify: boolean): void {
    if (s.draining !== 0) return;
    s.draining = mode;
    this.#dispatchQueue.delete(s);
    for (const set of this.#hungry.values()) set.delete(s);
    if (notify) s.channel?.send({ type: 'GOAWAY', stream: 0, code: 0, mode, deadlineMs, reason: 'drain requested by the coordinator' });
    this.emit('drain', { sessionId: s.id, mode, deadlineMs, by: notify ? 'coordinator' : 'worker' });
    s.drainTimer = this.timers.at(this.now() + deadlineMs, () => {
      // At the deadline what is left is revoked and handed back, not a failed attempt (ATP_SPEC §11.3).
      // Tracked as revokes: a REVOKE_ACK is accepted, other frames about them get ATP_ERR_WORKER_LEAVING.
      const held = [...s.leases.values()].map((h) => h.lease);
      this.revoke(held.map((lease) => ({ lease, code: 'ATP_ERR_WORKER_LEAVING' as const, reason: 'drain deadline passed' })));
      void Promise.all(
        held.map((l) => this.store.release({ leaseId: l.leaseId, epoch: l.epoch, sessionId: s.id }, undefined, this.now())),
      ).then(
        (outs) => {
          for (const out of outs) if (out.kind === 'ok') this.#afterChange(out.view, out.result, out.revoke);
        },
        (err: unknown) => this.fault('drain release', err, s),
      );
      // The session may be closed once the revoke deadline has passed too (ATP_SPEC §11.3).
      s.drainTimer = this.timers.at(this.now() + this.options.cancelDeadlineMs, () => s.channel?.close('ATP_ERR_NONE', 'drained'));
    });
  }

  // ---- dispatch (ATP_SPEC §5.1–5.2) ---------------------------------------------------------

  dispatch(s: ServerSession): void {
    if ((s.roles & Role.WORKER) === 0 || s.credits <= 0 || s.draining !== 0 || !s.connected) return;
    this.#dispatchQueue.add(s);
    if (!this.#dispatchScheduled) {
      this.#dispatchScheduled = true;
      // A microtask: every wake of the current callback is served in one pass, and the LEASE
      // frames it grants are queued before the channels flush (process.nextTick, after microtasks).
      queueMicrotask(() => this.#runDispatch());
    }
  }

  wake(tenant: string, kind: string): void {
    const set = this.#hungry.get(`${tenant}\0${kind}`);
    if (set === undefined) return;
    for (const s of set) this.dispatch(s);
  }

  dispatchNow(): void {
    if (this.#dispatchScheduled) this.#runDispatch();
  }

  #runDispatch(): void {
    if (!this.#dispatchScheduled) return; // served already, by dispatchNow()
    this.#dispatchScheduled = false;
    const batch = [...this.#dispatchQueue];
    this.#dispatchQueue.clear();
    for (const s of batch) this.#acquire(s);
  }

  #acquire(s: ServerSession): void {
    if (s.acquiring || s.credits <= 0 || s.draining !== 0 || !s.connected || this.#closing) return;
    s.acquiring = true;
    const want = s.credits;
    this.store
      .acquire({
        tenant: s.tenant,
        sessionId: s.id,
        nodeId: s.nodeId,
        kinds: s.kinds,
        max: want,
        now: this.now(),
        newLeaseId: () => this.#leaseIds.nextHex(),
        maxMessageBytes: s.channel?.peerMaxMessageBytes,
      })
      .then(
        (grants) => {
          s.acquiring = false;
          for (const g of grants) this.#grant(s, g);
          // The LEASEs leave now, in one write, ahead of whatever else this turn still has to do
          // (the ACCEPTED of the SUBMITs that made them leasable, say): work starts one step sooner.
          if (grants.length > 0) s.channel?.flush();
          for (const k of s.kinds) {
            const key = `${s.tenant}\0${k}`;
            let set = this.#hungry.get(key);
            if (grants.length < want) {
              if (set === undefined) this.#hungry.set(key, (set = new Set()));
              set.add(s);
            } else set?.delete(s);
          }
          if (grants.length > 0 && s.credits > 0) this.dispatch(s);
        },
        (err: unknown) => {
          s.acquiring = false;
          this.fault('acquire', err, s);
        },
      );
  }

  #grant(s: ServerSession, g: Grant): void {
    const now = this.now();
    if (!s.connected || s.draining !== 0) {
      // The worker left while the store was granting: hand the lease straight back.
      void this.store.release({ leaseId: g.leaseId, epoch: g.epoch, sessionId: s.id }, undefined, now).then((out) => {
        if (out.kind === 'ok') this.#afterChange(out.view, out.result, out.revoke);
      });
      return;
    }
    try {
      this.#sendLease(s, g, now);
    } catch (err) {
      if (!(err instanceof AtpError) || err.code !== 'ATP_ERR_PAYLOAD_TOO_LARGE') throw err;
      // ATP_WIRE §3.7: larger than this worker accepts. A failed attempt, so that a worker that
      // accepts more may take it, and the artifact ends after maxAttempts if none does.
      const ref = { leaseId: g.leaseId, epoch: g.epoch, sessionId: s.id };
      this.store.fail(ref, 'ATP_ERR_PAYLOAD_TOO_LARGE', true, `the LEASE is larger than worker ${s.id} accepts: ${err.message}`, now).then(
        (out) => {
          if (out.kind === 'ok') this.#afterChange(out.view, out.result, out.revoke);
        },
        (e: unknown) => this.fault('fail an oversized lease', e, s),
      );
      return;
    }
    s.credits--;
    const held = { lease: g, renewedAt: now, maxDurationTimer: undefined, confirmed: true };
    s.leases.set(g.leaseId, held);
    const expiry = s.expiryOf(held);
    if (expiry < s.expiryAt) this.armExpiry(s);
    this.#announceGrant(g);
  }

  #sendLease(s: ServerSession, g: Grant, now: number): void {
    s.channel!.send({
      type: 'LEASE',
      stream: 0,
      leaseId: hexInto(g.leaseId, LEASE_LEASE_ID),
      artifactId: hexInto(g.artifactId, LEASE_ARTIFACT_ID),
      epoch: g.epoch,
      attempt: Math.min(g.epoch, 0xffff),
      ttlMs: g.ttlMs,
      maxDurationMs: g.maxDurationMs,
      deadlineMs: g.deadlineAt > 0 ? Math.max(1, Math.min(0xffffffff, Math.round(g.deadlineAt - now))) : 0,
      lastPartialSeq: g.lastPartialSeq,
      kind: g.kind,
      parentId: g.parentId === null ? ZERO_ID : hexInto(g.parentId, LEASE_PARENT_ID),
      digest: { alg: 1, value: hexInto(g.digest, LEASE_DIGEST) },
      checkpoint: g.checkpoint,
      payload: g.payload,
    });
  }

  #announceGrant(g: Grant): void {
    // Nobody to tell (the common case: producers follow results only): no view to build.
    if (this.#chainDepth === 0 && !this.watches.wantsStates(g.tenant, g.artifactId)) return;
    // The grant does not carry the artifact's tags: tag watches get them from the store, in order.
    this.#fanOut(
      {
        tenant: g.tenant,
        id: g.artifactId,
        digest: g.digest,
        kind: g.kind,
        state: 'LEASED',
        parentId: g.parentId,
        tags: [],
        epoch: g.epoch,
        failedAttempts: 0,
        code: null,
        message: '',
        lastPartialSeq: g.lastPartialSeq,
        deadlineAt: g.deadlineAt,
      },
      (w, v) => this.watches.deliver(w, v, undefined),
      true,
    );
  }

  // ---- lease expiry (ATP_SPEC §5.6), one heap entry per session --------------------------------

  armExpiry(s: ServerSession): void {
    s.expiryTimer?.cancel();
    s.expiryTimer = undefined;
    s.expiryAt = Infinity;
    let next = Infinity;
    for (const h of s.leases.values()) next = Math.min(next, s.expiryOf(h));
    if (next === Infinity) return;
    s.expiryAt = next;
    // A lease is valid while now <= expiry (ATP_SPEC §5.3): check just after it, never at it.
    s.expiryTimer = this.timers.at(next + 1, () => this.#checkExpiry(s));
  }

  #checkExpiry(s: ServerSession): void {
    s.expiryTimer = undefined;
    s.expiryAt = Infinity;
    const now = this.now();
    const lost = [];
    for (const h of s.leases.values()) if (now > s.expiryOf(h)) lost.push(h);
    for (const h of lost) s.leases.delete(h.lease.leaseId);
    if (lost.length > 0) {
      const refs = lost.map((h) => ({ leaseId: h.lease.leaseId, epoch: h.lease.epoch, sessionId: s.id }));
      // The holder is told once the store has decided: a result decided just before (and still
      // being made durable) wins, and then the lease was not lost (ATP_SPEC §5.6).
      void this.#loseAndReport(refs, 'ATP_ERR_LEASE_EXPIRED', s);
    }
    this.armExpiry(s);
  }

  async #loseAndReport(
    refs: Array<{ leaseId: string; epoch: number; sessionId: string }>,
    code: ErrorCode,
    holder?: ServerSession,
  ): Promise<void> {
    try {
      const outs = await this.store.loseLeases(refs, code, this.now());
      for (const o of outs) {
        if (holder?.connected === true)
          sendLeaseLost(holder, 0, fromHex(o.lease.leaseId), o.lease.epoch, o.lease.artifactId, code, 'the lease expired without renewal');
        this.emit('lease-lost', { leaseId: o.lease.leaseId, artifactId: o.lease.artifactId, epoch: o.lease.epoch, code });
        if (o.changed !== undefined) this.#afterChange(o.changed.view, o.changed.result, o.changed.revoke);
      }
    } catch (err) {
      this.fault('lose leases', err);
    }
  }

  #afterChange(view: ArtifactView, result: ArtifactResult | undefined, revoke: readonly RevokeOrder[]): void {
    this.publish(view, result);
    this.revoke(revoke);
    if (view.state === 'PENDING') this.wake(view.tenant, view.kind);
  }

  // ---- sessions: detach, resume window, end (ATP_SPEC §11) ---------------------------------------

  #detach(s: ServerSession, why: string): void {
    s.channel = undefined;
    for (const set of this.#hungry.values()) set.delete(s);
    this.#dispatchQueue.delete(s);
    for (const w of [...s.watches.values()]) this.watches.remove(w);
    if ((s.roles & Role.WORKER) === 0 || (s.leases.size === 0 && s.revoking.size === 0)) {
      this.#forget(s);
      return;
    }
    this.emit('detached', { sessionId: s.id, leases: s.leases.size, why });
    // Leases wait for the worker to resume, at most one resume window (or their ttl, if shorter).
    s.resumeTimer?.cancel();
    s.resumeTimer = this.timers.at(this.now() + this.options.resumeWindowMs, () => {
      s.resumeTimer = undefined;
      if (s.connected) return;
      this.endSession(s, 'lose');
    });
  }

  endSession(s: ServerSession, how: 'release' | 'lose'): void {
    const refs = [...s.leases.values()].map((h) => ({ leaseId: h.lease.leaseId, epoch: h.lease.epoch, sessionId: s.id }));
    for (const h of s.leases.values()) h.maxDurationTimer?.cancel();
    s.leases.clear();
    s.expiryTimer?.cancel();
    let ended: Promise<unknown> | undefined;
    if (refs.length > 0) {
      if (how === 'lose') ended = this.#loseAndReport(refs, 'ATP_ERR_LEASE_EXPIRED');
      else
        ended = Promise.all(refs.map((r) => this.store.release(r, undefined, this.now()))).then(
          (outs) => {
            for (const out of outs) if (out.kind === 'ok') this.#afterChange(out.view, out.result, out.revoke);
          },
          (err: unknown) => this.fault('release', err),
        );
    }
    this.#forget(s, ended);
  }

  /** Drop the session; from the store once `leasesEnded` settles, so that no lease outlives its session's row. */
  #forget(s: ServerSession, leasesEnded?: Promise<unknown>): void {
    for (const r of s.revoking.values()) r.batch.timer?.cancel();
    s.revoking.clear();
    s.expiryTimer?.cancel();
    s.resumeTimer?.cancel();
    s.drainTimer?.cancel();
    for (const w of [...s.watches.values()]) this.watches.remove(w);
    for (const set of this.#hungry.values()) set.delete(s);
    this.#sessions.delete(s.id);
    if ((s.roles & Role.WORKER) === 0) return;
    const drop = () => this.store.dropSession(s.id).catch((err: unknown) => this.fault('drop session', err));
    if (leasesEnded === undefined) void drop();
    else void leasesEnded.then(drop, drop);
  }

  // ---- revocation (ATP_SPEC §8.3) -------------------------------------------------------------

  /**
   * Revoke leases (ATP_SPEC §8.3): REVOKE to each holder, and one deadline for the whole batch
   * per session, after which a lease not acknowledged is fenced and its holder told. A large batch
   * (a subtree cancel) is written out as it is made, so that workers start stopping while the rest
   * is still being revoked.
   */
  revoke(orders: readonly RevokeOrder[]): void {
    // Grouped by holder first (cheap); each lease's bookkeeping is done as its REVOKE is written,
    // so that the first frames leave before the whole batch has been gone through.
    const batches = new Map<ServerSession, { batch: RevokeBatch; orders: RevokeOrder[] }>();
    const deadline = this.now() + this.options.cancelDeadlineMs;
    for (const o of orders) {
      const s = this.#sessions.get(o.lease.sessionId);
      if (s === undefined) continue;
      let per = batches.get(s);
      if (per === undefined) {
        const b: RevokeBatch = { timer: undefined, pending: 0, entries: [] };
        b.timer = this.timers.at(deadline, () => this.#revokeDeadline(s, b));
        batches.set(s, (per = { batch: b, orders: [] }));
      }
      per.orders.push(o);
    }
    // Every holder in turn, REVOKE_FLUSH_EVERY leases at a time: all workers start stopping at once.
    const sessions = [...batches];
    for (let from = 0; sessions.length > 0; from += REVOKE_FLUSH_EVERY) {
      for (let i = sessions.length - 1; i >= 0; i--) {
        const [s, per] = sessions[i]!;
        const to = Math.min(from + REVOKE_FLUSH_EVERY, per.orders.length);
        for (let k = from; k < to; k++) this.#markRevoking(s, per.batch, per.orders[k]!);
        this.#sendRevokes(s, per.orders, from, to);
        if (to === per.orders.length) sessions.splice(i, 1);
        if (to - from === REVOKE_FLUSH_EVERY) s.channel?.flush();
      }
    }
  }

  /** The lease is no longer held but being revoked, under the batch's deadline. */
  #markRevoking(s: ServerSession, batch: RevokeBatch, o: RevokeOrder): void {
    const held = s.leases.get(o.lease.leaseId);
    held?.maxDurationTimer?.cancel();
    s.leases.delete(o.lease.leaseId);
    const entry: Revoking = { lease: o.lease, code: o.code, batch };
    batch.entries.push(entry);
    batch.pending++;
    s.revoking.set(o.lease.leaseId, entry);
  }

  /**
   * REVOKEs for orders[from, to) of one holder. With revoke-batch, orders that share their code and
   * reason (all of a subtree cancel) go in one REVOKE, the first in its fields and the others in
   * `more` (ATP_WIRE §6.31); otherwise one REVOKE each.
   */
  #sendRevokes(s: ServerSession, orders: readonly RevokeOrder[], from: number, to: number): void {
    let k = from;
    while (k < to) {
      const o = orders[k]!;
      const reason = truncate(o.reason);
      let end = k + 1;
      if (s.revokeBatch) {
        const last = Math.min(to, k + Limits.MAX_REVOKE_BATCH);
        while (end < last && orders[end]!.code === o.code && orders[end]!.reason === o.reason) end++;
      }
      this.#sendRevoke(s, o.lease, o.code, reason, end - k > 1 ? packRevokes(orders, k + 1, end) : undefined);
      k = end;
    }
  }

  /** No acknowledgement in time: the lease is fenced anyway; correctness never waits for the worker. */
  #revokeDeadline(s: ServerSession, batch: RevokeBatch): void {
    batch.timer = undefined;
    for (const r of batch.entries) {
      if (s.revoking.get(r.lease.leaseId) !== r) continue;
      s.revoking.delete(r.lease.leaseId);
      // ATP_SPEC §8.3-4: a connected holder is told, with the revoke's code, that the lease ended.
      const notified = s.connected;
      if (notified)
        sendLeaseLost(
          s,
          0,
          fromHex(r.lease.leaseId),
          r.lease.epoch,
          r.lease.artifactId,
          r.code,
          'no REVOKE_ACK before the revoke deadline: the lease is fenced',
        );
      this.emit('revoke-timeout', { sessionId: s.id, leaseId: r.lease.leaseId, artifactId: r.lease.artifactId, notified });
    }
  }

  /** `reason`: within the wire limit already. The ids are decoded into scratch bytes: a REVOKE is encoded at once. */
  #sendRevoke(
    s: ServerSession,
    lease: { leaseId: string; epoch: number; artifactId: string },
    code: ErrorCode,
    reason: string,
    more?: Uint8Array,
  ): void {
    const msg: MessageOf<'REVOKE'> = {
      type: 'REVOKE',
      stream: 0,
      leaseId: hexInto(lease.leaseId, REVOKE_LEASE_ID),
      epoch: lease.epoch,
      artifactId: hexInto(lease.artifactId, REVOKE_ARTIFACT_ID),
      code: wireCodeOf(code),
      deadlineMs: this.options.cancelDeadlineMs,
      reason,
    };
    if (more !== undefined) msg.more = more;
    s.channel?.send(msg);
  }

  revokedCode(s: ServerSession, leaseId: string): ErrorCode | undefined {
    return s.revoking.get(leaseId)?.code;
  }

  // ---- deadlines (ATP_SPEC §3.8) ----------------------------------------------------------------

  armDeadline(tenant: string, id: string, deadlineAt: number): void {
    this.timers.at(deadlineAt, () => {
      this.store.expire(tenant, id, this.now()).then(
        (out) => {
          if (out !== undefined) {
            this.#afterChange(out.view, out.result, out.revoke);
            this.emit('expired', { artifactId: id });
          }
        },
        (err: unknown) => this.fault('expire', err),
      );
    });
  }

  // ---- events ------------------------------------------------------------------------------

  publish(view: ArtifactView, result?: ArtifactResult): void {
    this.#fanOut(view, (w) => this.watches.deliver(w, view, result));
  }

  publishPartial(view: ArtifactView, seq: number, epoch: number, data: Uint8Array): void {
    const copy = ownedBytes(data);
    this.#fanOut(view, (w) => this.watches.deliverPartial(w, view.id, seq, epoch, copy));
  }

  /**
   * Deliver in the order the store decided. Without subtree watches (or tag watches, for a view
   * whose tags are not known) delivery is synchronous; otherwise the look-ups go through one chain
   * so that events keep their order.
   */
  #fanOut(view: ArtifactView, deliver: (watches: ReturnType<WatchHub['matching']>, view: ArtifactView) => void, tagsUnknown = false): void {
    const needAncestors = this.watches.hasSubtreeWatches && view.parentId !== null;
    const needTags = tagsUnknown && this.watches.hasTagWatches;
    if (!needAncestors && !needTags && this.#chainDepth === 0) return deliver(this.watches.matching(view, []), view);
    this.#chainDepth++;
    this.#chain = this.#chain
      .then(async () => {
        const a = needAncestors ? await this.store.ancestors(view.tenant, view.id) : [];
        const v = needTags ? { ...view, tags: (await this.store.get(view.tenant, view.id))?.tags ?? [] } : view;
        deliver(this.watches.matching(v, a), v);
      })
      .catch((err: unknown) => this.fault('fan-out', err))
      .finally(() => this.#chainDepth--);
  }
  #chain: Promise<void> = Promise.resolve();
  #chainDepth = 0;

  now(): number {
    return this.options.clock.now();
  }

  session(id: string): ServerSession | undefined {
    return this.#sessions.get(id);
  }

  /** Sessions now known (connected or within their resume window). */
  get sessions(): ReadonlyMap<string, ServerSession> {
    return this.#sessions;
  }

  fault(where: string, err: unknown, s?: ServerSession): void {
    this.emit('fault', { where, error: err instanceof Error ? err.message : String(err), sessionId: s?.id });
  }

  emit(event: string, detail: Record<string, unknown>): void {
    if (diag.hasSubscribers) diag.publish({ event, ...detail });
  }

  /** Stop: GOAWAY(ATP_ERR_SHUTTING_DOWN) to every session, close listeners and the store. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const l of this.#listeners) await l.close();
    for (const ch of [...this.#channels]) ch.close('ATP_ERR_SHUTTING_DOWN', 'the coordinator is shutting down');
    this.timers.clear();
    await this.store.close();
  }
}

/** REVOKE.more for orders[from, to): 36 bytes each, leaseId, epoch (u32), artifactId (ATP_WIRE §6.31). */
function packRevokes(orders: readonly RevokeOrder[], from: number, to: number): Uint8Array {
  const out = new Uint8Array((to - from) * REVOKE_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  for (let k = from, off = 0; k < to; k++, off += REVOKE_ENTRY_BYTES) {
    const l = orders[k]!.lease;
    hexInto(l.leaseId, out.subarray(off, off + 16));
    view.setUint32(off + 16, l.epoch);
    hexInto(l.artifactId, out.subarray(off + 20, off + 36));
  }
  return out;
}
