// Turning one provider call into a tokentally event, and watching calls and streams without
// changing what the caller sees.
import { currentTrace, type TraceScope } from './context.js';
import { now, utf8Length, uuid } from './runtime.js';
import { configure, enqueueEvent, settleCall, trackCall, transport, type InFlight, type RecordedEvent, type TransportOptions } from './transport.js';

/** Options of wrapOpenAI / wrapAnthropic. */
export interface WrapOptions extends Pick<TransportOptions, 'endpoint' | 'apiKey'> {
  /** A name for what this client does (`support-bot`, `summarizer`); shown as the agent. */
  agent?: string;
  /** `minimal` keeps prompts and responses in this process: only tokens, cost and tags are sent. */
  privacy?: 'full' | 'minimal';
  /**
   * The provider the calls are priced as (`openai`, `azure`, `openrouter`, `groq`, ...). Default:
   * detected from the client's `baseURL` (see `providerFromBaseURL`).
   */
  provider?: string;
  /**
   * OpenAI-compatible streams: ask for the final usage chunk (`stream_options.include_usage`).
   * Default: only for a `baseURL` of a provider known to accept it (api.openai.com, OpenRouter,
   * Groq, ...; not Azure, Bedrock, Vertex, nor a host not in the list). A stream without usage is
   * recorded with an estimate, marked as such.
   */
  streamUsage?: boolean;
}

/** The four disjoint token buckets, plus the parts of them the provider broke out. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  /** Part of `cache_creation_tokens` written with a 1-hour TTL. */
  cache_creation_1h_tokens?: number;
  /** Part of `output_tokens` spent on reasoning. */
  reasoning_tokens?: number;
  /** Part of the input (all three input buckets) that was audio. */
  audio_input_tokens?: number;
  /** Part of `output_tokens` that was audio. */
  audio_output_tokens?: number;
  /** The counts are the SDK's estimate: the provider reported none. */
  estimated?: boolean;
}

export const emptyUsage = (): Usage => ({ input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0 });

/** A count a provider reported: a non-negative integer, anything else 0. */
export const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);

/** Adds the reasoning/audio parts, each clamped to the bucket it is part of. */
function withParts(u: Usage, reasoning: number, audioIn: number, audioOut: number): Usage {
  const r = Math.min(reasoning, u.output_tokens);
  const ao = Math.min(audioOut, u.output_tokens - r);
  const ai = Math.min(audioIn, u.input_tokens + u.cache_read_tokens + u.cache_creation_tokens);
  if (r > 0) u.reasoning_tokens = r;
  if (ao > 0) u.audio_output_tokens = ao;
  if (ai > 0) u.audio_input_tokens = ai;
  return u;
}

/** OpenAI chat/completions/embeddings usage: `prompt_tokens` includes `prompt_tokens_details.cached_tokens`. */
export function fromOpenAIChat(u: any): Usage {
  const prompt = n(u?.prompt_tokens);
  const cached = Math.min(n(u?.prompt_tokens_details?.cached_tokens), prompt);
  const usage = { input_tokens: prompt - cached, output_tokens: n(u?.completion_tokens), cache_read_tokens: cached, cache_creation_tokens: 0 };
  return withParts(
    usage,
    n(u?.completion_tokens_details?.reasoning_tokens),
    n(u?.prompt_tokens_details?.audio_tokens),
    n(u?.completion_tokens_details?.audio_tokens),
  );
}

/** OpenAI Responses (and images, transcriptions) usage: `input_tokens` includes the cached tokens. */
export function fromOpenAIResponses(u: any): Usage {
  const input = n(u?.input_tokens);
  const cached = Math.min(n(u?.input_tokens_details?.cached_tokens), input);
  const usage = { input_tokens: input - cached, output_tokens: n(u?.output_tokens), cache_read_tokens: cached, cache_creation_tokens: 0 };
  return withParts(
    usage,
    n(u?.output_tokens_details?.reasoning_tokens),
    n(u?.input_token_details?.audio_tokens ?? u?.input_tokens_details?.audio_tokens),
    n(u?.output_tokens_details?.audio_tokens),
  );
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

const hasTokens = (u: Usage) => u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_creation_tokens > 0;

/** Tokens of a text, by the usual rule of thumb (4 characters a token). */
const estimateTokens = (chars: number) => Math.ceil(chars / 4);

/** A USD amount a provider reported as a JSON number, as the decimal string ingest takes. */
export function usdString(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 10_000) return undefined;
  return v.toFixed(12).replace(/0+$/, '').replace(/\.$/, '');
}

/** Most UTF-8 bytes a captured prompt or response takes in a batch. */
const MAX_CAPTURE = 64 * 1024;

/**
 * A value as JSON text, taken now (the caller may change its messages array afterwards, as agent
 * loops do), and at most MAX_CAPTURE bytes: past that, a `{ truncated, preview }` of its start
 * that fits, escaping included.
 */
export function snapshot(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  try {
    const json = JSON.stringify(value);
    if (json === undefined) return undefined;
    if (json.length <= MAX_CAPTURE / 3 || utf8Length(json) <= MAX_CAPTURE) return json;
    for (let chars = MAX_CAPTURE; chars > 0; chars = Math.floor(chars / 2)) {
      const preview = JSON.stringify({ truncated: true, preview: json.slice(0, chars) });
      if (utf8Length(preview) <= MAX_CAPTURE) return preview;
    }
    return undefined;
  } catch {
    return undefined;
  }
}


/** What one call produced. */
export interface CallOutcome {
  model?: string;
  usage?: Usage;
  tools?: string[];
  response?: unknown;
  error?: unknown;
  /** The caller stopped the call (a stream left early, or aborted). */
  cancelled?: boolean;
  /** Estimate the tokens when the provider reported none (a stream without a usage chunk). */
  estimate?: boolean;
  /** Text received so far, for an estimate of a stopped stream's output. */
  partialText?: string;
  /** Cost the provider reported (OpenRouter's `usage.cost`), in USD. */
  costUsd?: string;
}

/** Whether an error is the caller's own abort (AbortController, `stream.controller.abort()`). */
export function isAbort(err: unknown): boolean {
  const e = err as any;
  const names = [e?.name, e?.constructor?.name];
  return names.includes('AbortError') || names.includes('APIUserAbortError');
}

/** A call in flight: its context and prompt are captured when it starts. */
export class Call {
  private readonly started = now();
  private readonly startedAt = Date.now();
  private readonly trace: TraceScope | undefined = currentTrace();
  private readonly recorded: boolean;
  private readonly prompt: string | undefined;
  private done = false;
  private tracked: InFlight | undefined;

  constructor(
    private readonly provider: string,
    private readonly requestedModel: string | undefined,
    private readonly options: WrapOptions,
    prompt: unknown,
  ) {
    this.recorded = this.trace ? this.trace.recorded : transport.sample();
    this.prompt = this.recorded && options.privacy !== 'minimal' ? snapshot(prompt) : undefined;
    if (this.recorded) this.tracked = trackCall();
    // The prompt's size, for an estimate if the call is stopped before usage is reported.
    this.promptChars = this.prompt?.length ?? (this.recorded ? () => snapshot(prompt)?.length ?? 0 : 0);
  }

  private readonly promptChars: number | (() => number);

  /** A stream handed to the caller and not being read: flush() does not wait for it. */
  idle() {
    if (this.tracked) settleCall(this.tracked);
    this.tracked = undefined;
  }

  /** The caller reads the stream: flush() waits for its end. */
  busy() {
    if (!this.done && this.recorded && !this.tracked) this.tracked = trackCall();
  }

  finish(outcome: CallOutcome) {
    if (this.done) return;
    this.done = true;
    this.idle();
    if (!this.recorded) return;
    try {
      const err = outcome.error as any;
      const cancelled = outcome.cancelled === true;
      let usage = outcome.usage ?? emptyUsage();
      const received = estimateTokens(outcome.partialText?.length ?? 0);
      if ((cancelled || outcome.estimate) && !hasTokens(usage)) {
        const chars = typeof this.promptChars === 'number' ? this.promptChars : this.promptChars();
        usage = { ...emptyUsage(), input_tokens: estimateTokens(chars), output_tokens: received, estimated: true };
      } else if (cancelled && received > usage.output_tokens) {
        // Reported at the start (Anthropic's message_start), before the text that came after.
        usage = { ...usage, output_tokens: received, estimated: true };
      }
      const event: RecordedEvent = {
        id: uuid(),
        timestamp: new Date(this.startedAt).toISOString(),
        kind: 'llm',
        provider: this.provider,
        model: outcome.model || this.requestedModel || 'unknown',
        latency_ms: Math.max(0, Math.round(now() - this.started)),
        usage,
        status: cancelled ? 'cancelled' : err === undefined ? 'ok' : 'error',
      };
      if (outcome.costUsd !== undefined) event.cost_usd = outcome.costUsd;
      if (this.options.agent) event.agent = this.options.agent;
      if (this.trace) {
        if (this.trace.traceId) event.trace_id = this.trace.traceId;
        if (this.trace.routeTag) event.route_tag = this.trace.routeTag;
        event.tags = this.trace.tags;
      }
      if (err !== undefined && !cancelled) {
        const message = String(err?.message ?? err);
        const status = typeof err?.status === 'number' && !message.startsWith(String(err.status)) ? `${err.status} ` : '';
        event.error = `${status}${message}`.slice(0, 4_000);
      }
      if (outcome.tools?.length) event.tools = [...new Set(outcome.tools)];
      const raw = this.options.privacy === 'minimal' ? {} : contentFields(event, this.prompt, snapshot(outcome.response));
      enqueueEvent(event, raw);
    } catch {
      // Recording must never break the host's call.
    }
  }
}

/**
 * An event's prompt and response as the JSON text to send (they travel as captured, not parsed
 * again), after `configure({ redact })`.
 */
export function contentFields(event: RecordedEvent, prompt: string | undefined, response: string | undefined): Record<string, string> {
  const raw: Record<string, string> = {};
  if (prompt !== undefined) raw.prompt = prompt;
  if (response !== undefined) raw.response = response;
  if (transport.options.redact) redact(event, raw);
  return raw;
}

/**
 * Applies `configure({ redact })` to an event's prompt and response (JSON text in `raw`), failing
 * closed: a redact that throws or returns nothing sends neither.
 */
function redact(event: RecordedEvent, raw: Record<string, string>) {
  const fn = transport.options.redact;
  let out: RecordedEvent | null | undefined;
  try {
    const view: RecordedEvent = { ...event };
    for (const [k, v] of Object.entries(raw)) view[k] = JSON.parse(v);
    out = fn ? fn(view) : view;
  } catch {
    out = null;
  }
  for (const k of ['prompt', 'response']) {
    const json = out ? snapshot(out[k]) : undefined;
    if (json === undefined) delete raw[k];
    else raw[k] = json;
  }
}

/** Applies a wrapper's delivery options (endpoint, key) to the process-wide transport. */
export function applyWrapOptions(options: WrapOptions) {
  if (options.endpoint !== undefined || options.apiKey !== undefined) {
    configure({ endpoint: options.endpoint, apiKey: options.apiKey });
  }
}

/** Follows one stream: `chunk` sees each item (returning false hides it from the caller). */
export interface StreamWatch {
  /** `chunk` hides or changes items (the usage chunk the wrapper asked for). */
  rewrites?: boolean;
  chunk(item: any): boolean | void;
  /** After the item just seen, nothing more is to come (the final event): record now. */
  complete?(): boolean;
  end(error?: unknown, cancelled?: boolean): void;
}

/** How one SDK method's calls are recorded. */
export interface Surface {
  /** A call is starting: its record, and the params to send (the same object unless changed). */
  start(params: any): { call: Call; params: any } | undefined;
  /** The parsed result of a call that did not stream. */
  value(call: Call, data: any, params: any): void;
  /** A stream's watcher (when the result is a stream). */
  stream?(call: Call, params: any): StreamWatch;
}

const isStream = (v: any) => v != null && typeof v === 'object' && typeof v[Symbol.asyncIterator] === 'function';

/** Hands a parsed result to the surface: a stream is watched in place, anything else recorded. */
function settleValue(surface: Surface, call: Call, data: any, params: any) {
  try {
    if (surface.stream && isStream(data)) watchStream(data, surface.stream(call, params), call);
    else surface.value(call, data, params);
  } catch {
    call.finish({});
  }
}

/** `watch.end`, run at most once, never throwing into the caller. */
function endOnce(watch: StreamWatch): (error?: unknown, cancelled?: boolean) => void {
  let ended = false;
  return (error, cancelled) => {
    if (ended) return;
    ended = true;
    try {
      watch.end(error, cancelled);
    } catch {
      // never reaches the caller
    }
  };
}

/**
 * Shows one item to the watcher, and calls `done` when it was the final one. Returns whether the
 * caller gets the item (a watcher that throws hides nothing).
 */
function feed(watch: StreamWatch, item: unknown, done: () => void): boolean {
  try {
    const keep = watch.chunk(item) !== false;
    if (watch.complete?.()) done();
    return keep;
  } catch {
    return true;
  }
}

/**
 * `json` without its top-level `"usage":null` member (what include_usage adds to every chunk),
 * or `undefined` when it has none at the top level. Nested members are left alone.
 */
export function withoutNullUsage(json: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      const start = i;
      for (i++; i < json.length && json[i] !== '"'; i++) if (json[i] === '\\') i++;
      if (depth === 1 && json.slice(start, i + 1) === '"usage"') {
        const m = /^\s*:\s*null\s*/.exec(json.slice(i + 1));
        if (!m) continue;
        let from = start;
        let to = i + 1 + m[0].length;
        if (json[to] === ',') to++;
        else {
          // The last member: take the comma before it instead.
          const before = /,\s*$/.exec(json.slice(0, from));
          if (before) from = before.index;
        }
        return json.slice(0, from) + json.slice(to);
      }
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return undefined;
}

/**
 * Feeds one server-sent event (its lines and the blank line ending it) to a watcher, and returns
 * the text to pass on: the same text, '' to drop the whole event (a chunk the wrapper asked for),
 * or the text without the `"usage":null` member the wrapper's request added.
 */
function sseEvent(text: string, watch: StreamWatch, done: () => void): string {
  const data = text
    .split(/\r?\n|\r/)
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5))
    .join('\n');
  if (!data) return text;
  if (data === '[DONE]') {
    done();
    return text;
  }
  let item: any;
  try {
    item = JSON.parse(data);
  } catch {
    return text;
  }
  const nullUsage = item !== null && typeof item === 'object' && item.usage === null;
  const keep = feed(watch, item, done);
  if (!watch.rewrites) return text;
  if (!keep) return '';
  if (nullUsage && !('usage' in item)) {
    // One data line (as providers send chunks): rewrite that line only.
    const lines = text.split(/(\r?\n|\r)/);
    const at = lines.findIndex((l) => l.startsWith('data:'));
    const json = at >= 0 ? lines[at].slice(lines[at].startsWith('data: ') ? 6 : 5) : '';
    const cleaned = lines.filter((l) => l.startsWith('data:')).length === 1 ? withoutNullUsage(json) : undefined;
    if (cleaned !== undefined) {
      lines[at] = lines[at].slice(0, lines[at].length - json.length) + cleaned;
      return lines.join('');
    }
  }
  return text;
}

/**
 * A raw streamed `Response` (`asResponse()`), with its body read through the watcher as the
 * caller reads it: nothing is read ahead of the caller, a caller that cancels the body cancels
 * the download (and the call is recorded as cancelled), and the events the wrapper asked for are
 * taken out as on the parsed path. Every other byte passes as the provider sent it.
 */
function watchedResponse(response: Response, watch: StreamWatch, call: Call): Response {
  const reader = response.body!.getReader();
  // The bytes as sent: a byte-order mark is kept.
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const encoder = new TextEncoder();
  let pending = '';
  const end = endOnce(watch);
  /** The complete events in `pending` (all of it when `last`), as the text to pass on. */
  const events = (last: boolean): string => {
    let out = '';
    let m: RegExpExecArray | null;
    while ((m = /\r?\n\r?\n|\r\r/.exec(pending))) {
      const cut = m.index + m[0].length;
      out += sseEvent(pending.slice(0, cut), watch, () => end());
      pending = pending.slice(cut);
    }
    if (last && pending) {
      out += sseEvent(pending, watch, () => end());
      pending = '';
    }
    return out;
  };
  call.idle();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        call.busy();
        // Until something is passed on: a pull that enqueues nothing would stall the reader.
        for (;;) {
          let r: ReadableStreamReadResult<Uint8Array>;
          try {
            r = await reader.read();
          } catch (err) {
            end(err, isAbort(err));
            controller.error(err);
            return;
          }
          if (r.done) {
            pending += decoder.decode();
            const rest = events(true);
            if (watch.rewrites && rest) controller.enqueue(encoder.encode(rest));
            end();
            controller.close();
            return;
          }
          pending += decoder.decode(r.value, { stream: true });
          const out = events(false);
          if (!watch.rewrites) {
            controller.enqueue(r.value);
            return;
          }
          if (out) {
            controller.enqueue(encoder.encode(out));
            return;
          }
        }
      },
      cancel(reason) {
        end(undefined, true);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  const headers = new Headers(response.headers);
  if (watch.rewrites) headers.delete('content-length');
  const out = new Response(body, { status: response.status, statusText: response.statusText, headers });
  return withOrigin(out, response);
}

/** What a Response built here cannot be given, where it came from, copied (clones too). */
function withOrigin(out: Response, from: Response): Response {
  for (const k of ['url', 'redirected', 'type'] as const) {
    Object.defineProperty(out, k, { value: from[k], enumerable: false, configurable: true });
  }
  const clone = out.clone;
  Object.defineProperty(out, 'clone', {
    value: () => withOrigin(clone.call(out), from),
    enumerable: false,
    configurable: true,
  });
  return out;
}

/**
 * What the caller gets from `asResponse()` (the SDK does not parse it), recorded: a stream's body
 * is watched as it is read; JSON is parsed from a clone, as the SDK would.
 */
function recordResponse(surface: Surface, call: Call, response: Response, params: any): Response {
  try {
    if (!response.ok) {
      call.finish({ error: Object.assign(new Error(`${response.status} ${response.statusText}`), { status: response.status }) });
      return response;
    }
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('text/event-stream') && surface.stream && response.body) {
      return watchedResponse(response, surface.stream(call, params), call);
    }
    if (type.includes('json')) {
      response
        .clone()
        .json()
        .then(
          (data) => surface.value(call, data, params),
          () => call.finish({}),
        );
    } else {
      surface.value(call, undefined, params);
    }
  } catch {
    call.finish({});
  }
  return response;
}

/**
 * Records the outcome of `result`, what the SDK method returned, and returns what the caller
 * gets. An SDK `APIPromise` is chained the SDK's own way (`_thenUnwrap`), so the body is parsed
 * once and `parse()`, `withResponse()`, `asResponse()` and the rest keep working; a stream is
 * instrumented in place before the caller receives it.
 */
function observe(surface: Surface, call: Call, result: any, params: any): any {
  const failed = (err: unknown) => call.finish({ error: err, cancelled: isAbort(err) });
  if (result && typeof result._thenUnwrap === 'function' && typeof result.responsePromise?.then === 'function') {
    // Errors before a body (HTTP errors, network, abort); observing does not handle them for the caller.
    result.responsePromise.then(undefined, failed);
    const out = result._thenUnwrap((data: any) => {
      settleValue(surface, call, data, params);
      return data;
    });
    const asResponse = out.asResponse;
    if (typeof asResponse === 'function') {
      out.asResponse = function (this: any) {
        return asResponse.call(this).then((response: Response) => {
          // withResponse() parses as well: only a response nobody parses is recorded from here.
          if (this.parsedPromise === undefined && response && typeof response.clone === 'function') {
            return recordResponse(surface, call, response, params);
          }
          return response;
        });
      };
    }
    return out;
  }
  if (result && typeof result.then === 'function') {
    result.then((data: any) => settleValue(surface, call, data, params), failed);
    return result;
  }
  settleValue(surface, call, result, params);
  return result;
}

/** Replaces `target[method]` with a version that records each call; the caller sees no difference. */
export function instrument(target: any, method: string, surface: Surface) {
  const original = target?.[method];
  if (typeof original !== 'function' || original.__tokentally) return;
  const wrapped = function (this: unknown, ...args: any[]) {
    const params = args[0] ?? {};
    let started: { call: Call; params: any } | undefined;
    try {
      started = surface.start(params);
    } catch {
      started = undefined;
    }
    if (!started) return original.apply(this, args);
    const callArgs = started.params !== args[0] ? [started.params, ...args.slice(1)] : args;
    let result: any;
    try {
      result = original.apply(this, callArgs);
    } catch (err) {
      started.call.finish({ error: err });
      throw err;
    }
    try {
      return observe(surface, started.call, result, params);
    } catch {
      return result;
    }
  };
  Object.defineProperty(wrapped, '__tokentally', { value: true });
  target[method] = wrapped;
}

/**
 * Makes the client's `withOptions(...)` copies recorded too: each copy is a new client with
 * resources of its own, so `wrap` instruments it before the caller gets it.
 */
export function followCopies(client: any, wrap: (copy: any) => void) {
  const withOptions = client?.withOptions;
  if (typeof withOptions !== 'function' || withOptions.__tokentally) return;
  const wrapped = function (this: unknown, ...args: any[]) {
    const copy = withOptions.apply(this, args);
    try {
      wrap(copy);
    } catch {
      // the copy works, unrecorded
    }
    return copy;
  };
  Object.defineProperty(wrapped, '__tokentally', { value: true });
  client.withOptions = wrapped;
}

/**
 * Watches an SDK stream's items as they are read. The SDKs' `Stream` makes every reader
 * (`for await`, `tee()`, `toReadableStream()`) call its `iterator` factory, so that is what is
 * replaced; other async iterables get their `Symbol.asyncIterator` replaced. A stream left early
 * (`break`, `return()`, an abort) ends as cancelled.
 */
export function watchStream(stream: any, watch: StreamWatch, call?: Call) {
  const own = typeof stream?.iterator === 'function' && Object.prototype.hasOwnProperty.call(stream, 'iterator');
  const key: string | symbol = own ? 'iterator' : Symbol.asyncIterator;
  const original = stream?.[key];
  if (typeof original !== 'function') {
    watch.end();
    return;
  }
  const end = endOnce(watch);
  call?.idle();
  stream[key] = function (this: unknown) {
    const it = original.call(this);
    const iterator: AsyncIterator<unknown> & AsyncIterable<unknown> = {
      async next() {
        // Read, not just handed over (tee() and toReadableStream() take the iterator at once).
        call?.busy();
        for (;;) {
          let r: IteratorResult<unknown>;
          try {
            r = await it.next();
          } catch (err) {
            end(err, isAbort(err));
            throw err;
          }
          if (r.done) {
            // The SDKs end a stream quietly when it is aborted (controller.abort(), a helper's
            // abort(), the caller's signal): that is a stop, not a completion.
            end(undefined, stream?.controller?.signal?.aborted === true);
            return r;
          }
          if (feed(watch, r.value, end)) return r;
        }
      },
      async return(value?: unknown) {
        end(undefined, true);
        return typeof it.return === 'function' ? it.return(value) : { done: true, value };
      },
      async throw(err?: unknown) {
        end(err, isAbort(err));
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

/** Provider names as tokentally's price table spells them, by the API host a client talks to. */
const HOSTS: [RegExp, string][] = [
  [/(^|\.)openrouter\.ai$/, 'openrouter'],
  [/(^|\.)groq\.com$/, 'groq'],
  [/(^|\.)together\.(xyz|ai)$/, 'together'],
  [/\.(openai|cognitiveservices)\.azure\.(com|us|cn)$/, 'azure'],
  [/\.services\.ai\.azure\.com$|\.models\.ai\.azure\.com$|\.inference\.ai\.azure\.com$/, 'azure_ai'],
  [/^bedrock(-runtime|-mantle)?[.-].*amazonaws\.com$/, 'bedrock'],
  [/(^|[.-])aiplatform\.googleapis\.com$/, 'vertex_ai'],
  [/^generativelanguage\.googleapis\.com$/, 'gemini'],
  [/(^|\.)mistral\.ai$/, 'mistral'],
  [/(^|\.)deepseek\.com$/, 'deepseek'],
  [/(^|\.)x\.ai$/, 'xai'],
  [/(^|\.)fireworks\.ai$/, 'fireworks'],
  [/(^|\.)perplexity\.ai$/, 'perplexity'],
  [/(^|\.)cerebras\.ai$/, 'cerebras'],
  [/(^|\.)deepinfra\.com$/, 'deepinfra'],
  [/(^|\.)anthropic\.com$/, 'anthropic'],
  [/(^|\.)openai\.com$/, 'openai'],
];

/**
 * The provider behind an API base URL (`https://openrouter.ai/api/v1` → `openrouter`), or
 * `undefined` for a host not in the list (a local server, a proxy).
 */
export function providerFromBaseURL(baseURL: unknown): string | undefined {
  if (typeof baseURL !== 'string') return undefined;
  let host: string;
  try {
    host = new URL(baseURL).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  return HOSTS.find(([re]) => re.test(host))?.[1];
}
