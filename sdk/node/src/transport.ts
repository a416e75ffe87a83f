// Delivery: a bounded in-memory queue sent in batches in the background, retried with backoff on
// network errors, 429 and 5xx (never on other 4xx). Nothing here ever throws into the host app.

export interface TransportOptions {
  /** tokentally base URL (default: TOKENTALLY_URL, else http://127.0.0.1:3000). */
  endpoint?: string;
  /** Ingest key (default: TOKENTALLY_KEY). Without one, nothing is sent (and drops are counted). */
  apiKey?: string;
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

type Item = { kind: 'event'; body: Record<string, unknown> } | { kind: 'trace'; body: Record<string, unknown> };

const env = (name: string) => (typeof process !== 'undefined' ? process.env[name] : undefined);

class Transport {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private readonly warned = new Set<string>();
  readonly stats: DeliveryStats = { queued: 0, sent: 0, dropped: 0, rejected: 0 };
  options: Required<Omit<TransportOptions, 'apiKey' | 'onError'>> & Pick<TransportOptions, 'apiKey' | 'onError'>;

  constructor() {
    this.options = Transport.resolve({});
  }

  static resolve(o: TransportOptions) {
    return {
      endpoint: (o.endpoint ?? env('TOKENTALLY_URL') ?? 'http://127.0.0.1:3000').replace(/\/+$/, ''),
      apiKey: o.apiKey ?? env('TOKENTALLY_KEY'),
      maxQueue: o.maxQueue ?? 10_000,
      maxBatch: o.maxBatch ?? 100,
      flushIntervalMs: o.flushIntervalMs ?? 1_000,
      maxRetries: o.maxRetries ?? 5,
      retryBaseMs: o.retryBaseMs ?? 250,
      timeoutMs: o.timeoutMs ?? 10_000,
      onError: o.onError,
    };
  }

  configure(o: TransportOptions) {
    const merged = { ...this.options, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
    this.options = Transport.resolve(merged);
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
      this.timer.unref?.();
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
      await this.deliver(batch);
    }
  }

  private async deliver(batch: Item[]) {
    const { endpoint, apiKey, maxRetries, retryBaseMs, timeoutMs } = this.options;
    if (!apiKey) {
      this.stats.dropped += batch.length;
      this.report('config', new Error('no ingest key (set TOKENTALLY_KEY or pass apiKey); events are dropped'));
      return;
    }
    const body = JSON.stringify({
      events: batch.filter((i) => i.kind === 'event').map((i) => i.body),
      traces: batch.filter((i) => i.kind === 'trace').map((i) => i.body),
    });
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
      await new Promise((resolve) => setTimeout(resolve, delay).unref?.());
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

const transport = new Transport();

export function enqueueEvent(body: Record<string, unknown>) {
  transport.enqueue({ kind: 'event', body });
}

export function enqueueTrace(body: Record<string, unknown>) {
  transport.enqueue({ kind: 'trace', body });
}

/** Sets delivery options for the whole process (the wrappers' `endpoint`/`apiKey` also land here). */
export function configure(options: TransportOptions) {
  transport.configure(options);
}

/** Sends everything queued; resolves when it is acknowledged or given up. Never rejects. */
export async function flush(): Promise<void> {
  try {
    await transport.flush();
  } catch {
    // never reaches the host app
  }
}

/** Flushes, for process exit and serverless handlers. */
export async function shutdown(): Promise<void> {
  await flush();
}

/** Counts of queued, sent, dropped (queue full, retries exhausted, no key) and rejected items. */
export function deliveryStats(): DeliveryStats {
  return { ...transport.stats };
}
