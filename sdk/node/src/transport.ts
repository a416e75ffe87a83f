// Delivery: a bounded in-memory queue sent in batches in the background, retried with backoff on
// network errors, 429 and 5xx (never on other 4xx). Nothing here ever throws into the host app.
// Settings are read when they are used, so environment variables set after import (dotenv) count.
import { env, onBeforeExit, shared, utf8Length } from './runtime.js';

/** An event as it will be sent; `redact` may rewrite its `prompt` and `response`. */
export type RecordedEvent = Record<string, unknown> & { prompt?: unknown; response?: unknown };

export interface TransportOptions {
  /** tokentally base URL (default: TOKENTALLY_URL, else http://127.0.0.1:3000). */
  endpoint?: string;
  /** Ingest key (default: TOKENTALLY_KEY). Without one, nothing is sent (and drops are counted). */
  apiKey?: string;
  /** Record nothing at all (default: TOKENTALLY_DISABLED=1 or true). */
  disabled?: boolean;
  /**
   * Share of traces recorded, 0..1 (default 1: every call). The choice is made per trace, so a
   * recorded trace has all its calls; spend in the dashboard is then that share of the real spend.
   */
  sampleRate?: number;
  /**
   * Called with each event before it is queued; returns the event with `prompt` and `response`
   * rewritten or removed (only those two fields are taken from it), or `null` to send neither.
   * A redact that throws also sends neither.
   */
  redact?: ((event: RecordedEvent) => RecordedEvent | null | undefined) | null;
  /** Most items (events + traces) kept waiting; the oldest are dropped past it. Default 10,000. */
  maxQueue?: number;
  /** Items per request. Default 100. */
  maxBatch?: number;
  /** Longest wait before a partial batch is sent, in ms. Default 1,000. */
  flushIntervalMs?: number;
  /** Retries of one batch before it is given up. Default 5. */
  maxRetries?: number;
  /** First retry delay in ms, doubled each time. Default 250. */
  retryBaseMs?: number;
  /** Per-request timeout in ms. Default 10,000. */
  timeoutMs?: number;
  /** Called with delivery problems (default: one console.warn per kind of problem). */
  onError?: (error: Error) => void;
}

/** What happened to everything recorded so far. */
export interface DeliveryStats {
  queued: number;
  sent: number;
  dropped: number;
  rejected: number;
}

/** Largest request body sent (the server takes up to 10 MiB). */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** A queued event or trace; `raw` holds fields already serialized (prompt, response JSON text). */
type Item = { kind: 'event' | 'trace'; body: Record<string, unknown>; raw?: Record<string, string> };

/** One item as JSON: its body, with its pre-serialized fields spliced in as they are. */
function itemJson(item: Item): string {
  let json = JSON.stringify(item.body);
  for (const [k, v] of Object.entries(item.raw ?? {})) {
    json = `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}${JSON.stringify(k)}:${v}}`;
  }
  return json;
}

type Settings = Required<Omit<TransportOptions, 'endpoint' | 'apiKey' | 'disabled' | 'onError' | 'redact'>> &
  Pick<TransportOptions, 'endpoint' | 'apiKey' | 'disabled' | 'onError' | 'redact'>;

const DEFAULTS: Settings = {
  maxQueue: 10_000,
  maxBatch: 100,
  flushIntervalMs: 1_000,
  maxRetries: 5,
  retryBaseMs: 250,
  timeoutMs: 10_000,
  sampleRate: 1,
};

class Transport {
  private queue: Item[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sending: Promise<void> | undefined;
  private exitHook = false;
  private readonly warned = new Set<string>();
  readonly stats: DeliveryStats = { queued: 0, sent: 0, dropped: 0, rejected: 0 };
  options: Settings = { ...DEFAULTS };

  configure(o: TransportOptions) {
    for (const [k, v] of Object.entries(o)) if (v !== undefined) (this.options as any)[k] = v;
  }

  /** The base URL, from configure() or TOKENTALLY_URL at the moment of sending. */
  endpoint(): string {
    return (this.options.endpoint ?? env('TOKENTALLY_URL') ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
  }

  apiKey(): string | undefined {
    return this.options.apiKey ?? env('TOKENTALLY_KEY');
  }

  private envDisabled: boolean | undefined;

  /** configure({ disabled }), else TOKENTALLY_DISABLED as it was at the first recorded call. */
  disabled(): boolean {
    if (this.options.disabled !== undefined) return this.options.disabled;
    if (this.envDisabled === undefined) {
      const v = env('TOKENTALLY_DISABLED');
      this.envDisabled = v === '1' || v?.toLowerCase() === 'true';
    }
    return this.envDisabled;
  }

  /** Whether a new trace (or a call outside any trace) is recorded. */
  sample(): boolean {
    if (this.disabled()) return false;
    const rate = this.options.sampleRate;
    return !(rate < 1) || Math.random() < rate;
  }

  hasWork(): boolean {
    return this.queue.length > 0 || this.sending !== undefined;
  }

  private report(kind: string, error: Error) {
    try {
      if (this.options.onError) this.options.onError(error);
      else if (!this.warned.has(kind)) {
        this.warned.add(kind);
        console.warn(`[tokentally] ${error.message} (further ${kind} problems are counted, not logged)`);
      }
    } catch {
      // A failing error handler must not reach the host app either.
    }
  }

  enqueue(item: Item) {
    if (!this.exitHook) {
      // A script that ends without flush() still sends what it recorded.
      this.exitHook = true;
      onBeforeExit(() => {
        if (this.hasWork()) void this.flush();
      });
    }
    if (this.queue.length >= this.options.maxQueue) {
      this.queue.shift();
      this.stats.dropped++;
    }
    this.queue.push(item);
    this.stats.queued++;
    if (this.queue.length >= this.options.maxBatch) this.kick();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, this.options.flushIntervalMs);
      (this.timer as any).unref?.();
    }
  }

  /** Starts the send loop unless it is running. */
  private kick(): Promise<void> {
    if (!this.sending) {
      this.sending = this.drain().finally(() => {
        this.sending = undefined;
      });
    }
    return this.sending;
  }

  private async drain() {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      // Requests stay well under the server's body limit (10 MiB) whatever the prompts weigh.
      const sized = batch.map((item) => {
        const json = itemJson(item);
        return { item, json, bytes: utf8Length(json) };
      });
      let start = 0;
      while (start < sized.length) {
        let end = start;
        let bytes = 0;
        while (end < sized.length && (end === start || bytes + sized[end].bytes <= MAX_REQUEST_BYTES)) bytes += sized[end++].bytes;
        await this.deliver(sized.slice(start, end));
        start = end;
      }
    }
  }

  private async deliver(batch: { item: Item; json: string }[]): Promise<void> {
    const { maxRetries, retryBaseMs, timeoutMs } = this.options;
    const endpoint = this.endpoint();
    const apiKey = this.apiKey();
    if (!apiKey) {
      this.stats.dropped += batch.length;
      this.report('config', new Error('no ingest key (set TOKENTALLY_KEY or pass apiKey); events are dropped'));
      return;
    }
    const list = (kind: Item['kind']) => batch.filter((b) => b.item.kind === kind).map((b) => b.json).join(',');
    const body = `{"events":[${list('event')}],"traces":[${list('trace')}]}`;
    for (let attempt = 0; ; attempt++) {
      let retryable: boolean;
      try {
        const res = await fetch(`${endpoint}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        if (res.ok) {
          this.stats.sent += batch.length;
          return;
        }
        if (res.status === 413 && batch.length > 1) {
          // Too big for this server's limit: each half on its own.
          const half = Math.ceil(batch.length / 2);
          await this.deliver(batch.slice(0, half));
          await this.deliver(batch.slice(half));
          return;
        }
        retryable = res.status === 429 || res.status >= 500;
        if (!retryable) {
          this.stats.rejected += batch.length;
          this.report(`http-${res.status}`, new Error(`tokentally rejected a batch: ${res.status} ${text.slice(0, 300)}`));
          return;
        }
        this.report('retry', new Error(`tokentally answered ${res.status}; retrying`));
      } catch (err) {
        this.report('network', new Error(`could not reach tokentally at ${endpoint}: ${(err as Error).message}`));
      }
      if (attempt >= maxRetries) {
        this.stats.dropped += batch.length;
        return;
      }
      const delay = retryBaseMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
      await new Promise((resolve) => (setTimeout(resolve, delay) as any).unref?.());
    }
  }

  /** Resolves when everything queued so far is acknowledged or given up. */
  async flush() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.queue.length > 0 || this.sending) await this.kick();
  }
}

/** One transport per process, even when both the ES-module and the CommonJS build are loaded. */
export const transport: Transport = shared('transport', () => new Transport());

export function enqueueEvent(body: Record<string, unknown>, raw?: Record<string, string>) {
  transport.enqueue({ kind: 'event', body, raw });
}

export function enqueueTrace(body: Record<string, unknown>) {
  transport.enqueue({ kind: 'trace', body });
}

/**
 * Sets options for the whole process (the wrappers' `endpoint`/`apiKey` also land here). Options
 * not given keep their value; endpoint, key and `disabled` fall back to the environment when used.
 */
export function configure(options: TransportOptions) {
  try {
    transport.configure(options);
  } catch {
    // never reaches the host app
  }
}

/** Calls started and not yet recorded (a stream being read, a response not yet parsed). */
/** A call flush() may wait for; no promise per call (the calls' own path stays lean). */
export interface InFlight {
  waiters?: (() => void)[];
}

const inFlight: Set<InFlight> = shared('inFlight', () => new Set<InFlight>());
const MAX_IN_FLIGHT = 10_000;

/** Tracks a call from its start; `settleCall` when it is recorded. */
export function trackCall(): InFlight {
  if (inFlight.size >= MAX_IN_FLIGHT) {
    // A caller that never reads its streams must not grow this set without bound.
    const oldest = inFlight.values().next().value;
    if (oldest) settleCall(oldest);
  }
  const call: InFlight = {};
  inFlight.add(call);
  return call;
}

export function settleCall(call: InFlight) {
  inFlight.delete(call);
  const waiters = call.waiters;
  call.waiters = undefined;
  waiters?.forEach((w) => w());
}

/** Resolves when every call of `calls` has settled; `stop` detaches it from those still open. */
function settled(calls: InFlight[]): { done: Promise<void>; stop: () => void } {
  const waiting: InFlight[] = [];
  let one: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    let left = calls.length;
    one = () => {
      if (--left === 0) resolve();
    };
    for (const c of calls) {
      if (inFlight.has(c)) {
        (c.waiters ??= []).push(one);
        waiting.push(c);
      } else one();
    }
    if (calls.length === 0) resolve();
  });
  const stop = () => {
    for (const c of waiting) if (c.waiters) c.waiters = c.waiters.filter((w) => w !== one);
  };
  return { done, stop };
}

export interface FlushOptions {
  /** Longest wait in ms (default 10,000); flush resolves by then whatever is left. */
  timeoutMs?: number;
}

/**
 * Waits for calls in flight (streams still being read) to be recorded, then sends everything
 * queued; resolves when it is acknowledged or given up, or at the deadline, whichever is first.
 * Never rejects. Serverless: `waitUntil(flush())`, `after(flush)`, or `await flush()` before
 * returning.
 */
export async function flush(options: FlushOptions = {}): Promise<void> {
  const timers: ReturnType<typeof setTimeout>[] = [];
  const sleep = (ms: number) => new Promise<void>((resolve) => timers.push(setTimeout(resolve, Math.max(0, ms))));
  try {
    const ms = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + ms;
    // The calls in flight now (not those started while waiting), for all but the last part of
    // the time, which is kept for sending what they recorded and what was queued.
    const calls = [...inFlight];
    if (calls.length > 0) {
      const wait = settled(calls);
      await Promise.race([wait.done, sleep(ms - Math.min(ms / 4, 1_000))]);
      wait.stop();
    }
    await Promise.race([transport.flush().catch(() => undefined), sleep(deadline - Date.now())]);
  } catch {
    // never reaches the host app
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}

/** Flushes, for process exit and serverless handlers. */
export async function shutdown(options: FlushOptions = {}): Promise<void> {
  await flush(options);
}

/** Counts of queued, sent, dropped (queue full, retries exhausted, no key) and rejected items. */
export function deliveryStats(): DeliveryStats {
  return { ...transport.stats };
}
