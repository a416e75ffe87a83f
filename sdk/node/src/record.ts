// Turning one provider call into a tokentally event, and watching calls and streams without
// changing what the caller sees.
import { randomUUID } from 'node:crypto';
import { currentTrace, type TraceScope } from './context.js';
import { configure, enqueueEvent, type TransportOptions } from './transport.js';

/** Options of wrapOpenAI / wrapAnthropic. */
export interface WrapOptions extends Pick<TransportOptions, 'endpoint' | 'apiKey'> {
  /** A name for what this client does (`support-bot`, `summarizer`); shown as the agent. */
  agent?: string;
  /** `minimal` keeps prompts and responses in this process: only tokens, cost and tags are sent. */
  privacy?: 'full' | 'minimal';
}

/** The four disjoint token buckets, plus the 1-hour part of the cache writes. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  cache_creation_1h_tokens?: number;
}

export const emptyUsage = (): Usage => ({ input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 });

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

/** OpenAI chat/embeddings usage: `prompt_tokens` includes `prompt_tokens_details.cached_tokens`. */
export function fromOpenAIChat(u: any): Usage {
  const prompt = n(u?.prompt_tokens);
  const cached = Math.min(n(u?.prompt_tokens_details?.cached_tokens), prompt);
  return { input_tokens: prompt - cached, output_tokens: n(u?.completion_tokens), cache_read_tokens: cached, cache_creation_tokens: 0 };
}

/** OpenAI Responses usage: `input_tokens` includes `input_tokens_details.cached_tokens`. */
export function fromOpenAIResponses(u: any): Usage {
  const input = n(u?.input_tokens);
  const cached = Math.min(n(u?.input_tokens_details?.cached_tokens), input);
  return { input_tokens: input - cached, output_tokens: n(u?.output_tokens), cache_read_tokens: cached, cache_creation_tokens: 0 };
}

/** Anthropic usage: `input_tokens` excludes the cache reads and writes, which come separately. */
export function fromAnthropic(u: any): Usage {
  const creation = n(u?.cache_creation_input_tokens);
  const oneHour = Math.min(n(u?.cache_creation?.ephemeral_1h_input_tokens), creation);
  const usage: Usage = {
    input_tokens: n(u?.input_tokens),
    output_tokens: n(u?.output_tokens),
    cache_read_tokens: n(u?.cache_read_input_tokens),
    cache_creation_tokens: creation,
  };
  if (oneHour > 0) usage.cache_creation_1h_tokens = oneHour;
  return usage;
}

const MAX_CAPTURE = 64 * 1024;

/** Prompts and responses are kept as sent, but never so large that a batch would be refused. */
function capture(value: unknown): unknown {
  if (value === undefined) return undefined;
  try {
    const json = JSON.stringify(value);
    if (json === undefined) return undefined;
    return json.length <= MAX_CAPTURE ? value : { truncated: true, preview: json.slice(0, MAX_CAPTURE) };
  } catch {
    return undefined;
  }
}

/** What one call produced. */
export interface CallOutcome {
  model?: string;
  usage: Usage;
  tools?: string[];
  response?: unknown;
  error?: unknown;
}

/** A call in flight: its context is captured when it starts, so it is attributed to that trace. */
export class Call {
  private readonly started = performance.now();
  private readonly startedAt = new Date();
  private readonly trace: TraceScope | undefined = currentTrace();
  private done = false;

  constructor(
    private readonly provider: string,
    private readonly requestedModel: string | undefined,
    private readonly options: WrapOptions,
    private readonly prompt: unknown,
  ) {}

  finish(outcome: CallOutcome) {
    if (this.done) return;
    this.done = true;
    try {
      const full = this.options.privacy !== 'minimal';
      const err = outcome.error as any;
      const event: Record<string, unknown> = {
        id: randomUUID(),
        timestamp: this.startedAt.toISOString(),
        kind: 'llm',
        provider: this.provider,
        model: outcome.model || this.requestedModel || 'unknown',
        latency_ms: Math.max(0, Math.round(performance.now() - this.started)),
        usage: outcome.usage,
        status: err === undefined ? 'ok' : 'error',
      };
      if (this.options.agent) event.agent = this.options.agent;
      if (this.trace) {
        event.trace_id = this.trace.traceId;
        if (this.trace.routeTag) event.route_tag = this.trace.routeTag;
        event.tags = this.trace.tags;
      }
      if (err !== undefined) {
        const status = typeof err?.status === 'number' ? `${err.status} ` : '';
        event.error = `${status}${err?.message ?? String(err)}`.slice(0, 4_000);
      }
      if (outcome.tools?.length) event.tools = [...new Set(outcome.tools)];
      if (full) {
        event.prompt = capture(this.prompt);
        event.response = capture(outcome.response);
      }
      enqueueEvent(event);
    } catch {
      // Recording must never break the host's call.
    }
  }
}

/** Applies a wrapper's delivery options (endpoint, key) to the process-wide transport. */
export function applyWrapOptions(options: WrapOptions) {
  if (options.endpoint !== undefined || options.apiKey !== undefined) {
    configure({ endpoint: options.endpoint, apiKey: options.apiKey });
  }
}

/**
 * Replaces `target[method]` with a version that records each call. The original's return value
 * (an SDK `APIPromise`, with `withResponse()` and the rest) is returned untouched; a listener
 * attached to it records the outcome, and for streams instruments the stream object in place
 * before the caller receives it.
 */
export function instrument(
  target: any,
  method: string,
  handlers: {
    start: (params: any) => { call: Call; params: any };
    result: (call: Call, value: any, params: any) => void;
  },
) {
  const original = target?.[method];
  if (typeof original !== 'function' || original.__tokentally) return;
  const wrapped = function (this: unknown, ...args: any[]) {
    let started: { call: Call; params: any } | undefined;
    try {
      started = handlers.start(args[0] ?? {});
    } catch {
      started = undefined;
    }
    const callArgs = started && started.params !== args[0] ? [started.params, ...args.slice(1)] : args;
    let result: any;
    try {
      result = original.apply(this, callArgs);
    } catch (err) {
      started?.call.finish({ usage: emptyUsage(), error: err });
      throw err;
    }
    if (started && result && typeof result.then === 'function') {
      const { call } = started;
      result.then(
        (value: any) => {
          try {
            handlers.result(call, value, args[0] ?? {});
          } catch {
            call.finish({ usage: emptyUsage() });
          }
        },
        (err: unknown) => call.finish({ usage: emptyUsage(), error: err }),
      );
    }
    return result;
  };
  Object.defineProperty(wrapped, '__tokentally', { value: true });
  target[method] = wrapped;
}

/**
 * Watches an SDK stream's chunks as the caller reads them. `onChunk` returning false hides that
 * chunk from the caller; `onEnd` runs once, when the stream ends, fails or is abandoned.
 */
export function watchStream(stream: any, onChunk: (chunk: any) => boolean | void, onEnd: (error?: unknown) => void) {
  const original = stream?.[Symbol.asyncIterator];
  if (typeof original !== 'function') {
    onEnd();
    return;
  }
  let ended = false;
  const end = (error?: unknown) => {
    if (ended) return;
    ended = true;
    try {
      onEnd(error);
    } catch {
      // never reaches the caller
    }
  };
  stream[Symbol.asyncIterator] = function (this: unknown) {
    const it = original.call(this);
    const iterator: AsyncIterator<unknown> & AsyncIterable<unknown> = {
      async next() {
        for (;;) {
          let r: IteratorResult<unknown>;
          try {
            r = await it.next();
          } catch (err) {
            end(err);
            throw err;
          }
          if (r.done) {
            end();
            return r;
          }
          let keep = true;
          try {
            keep = onChunk(r.value) !== false;
          } catch {
            keep = true;
          }
          if (keep) return r;
        }
      },
      async return(value?: unknown) {
        end();
        return typeof it.return === 'function' ? it.return(value) : { done: true, value };
      },
      async throw(err?: unknown) {
        end(err);
        if (typeof it.throw === 'function') return it.throw(err);
        throw err;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return iterator;
  };
}
