// wrapOpenAI: every call an `openai` client makes that costs tokens (chat completions, responses,
// embeddings, legacy completions, images, audio), plain or streaming, through `create`, `parse`,
// `stream` or `withOptions` clients, recorded without changing what the caller sees.
import {
  Call,
  applyWrapOptions,
  emptyUsage,
  fromOpenAIChat,
  fromOpenAIResponses,
  followCopies,
  instrument,
  n,
  providerFromBaseURL,
  usdString,
  type StreamWatch,
  type Surface,
  type Usage,
  type WrapOptions,
} from './record.js';

export { withTrace, withTags } from './context.js';
export { flush, shutdown, configure, deliveryStats } from './transport.js';
export { log } from './log.js';
export type { TraceOptions } from './context.js';
export type { WrapOptions } from './record.js';

/** Providers whose OpenAI-compatible API is known to accept `stream_options.include_usage`. */
const STREAM_USAGE = new Set(['openai', 'openrouter', 'groq', 'together', 'deepseek', 'xai', 'fireworks', 'deepinfra', 'cerebras', 'gemini']);

/** The shape wrapOpenAI accepts: an `openai` client (an Anthropic client is a type error). */
export interface OpenAILike {
  chat: { completions: { create: (...args: any[]) => any } };
  embeddings: { create: (...args: any[]) => any };
}

interface Ctx {
  provider: string;
  options: WrapOptions;
  streamUsage: boolean;
}

function chatToolNames(message: any): string[] {
  return (message?.tool_calls ?? []).map((t: any) => t?.function?.name).filter((x: unknown) => typeof x === 'string');
}

function responseToolNames(output: any): string[] {
  return (Array.isArray(output) ? output : [])
    .filter((o: any) => o?.type === 'function_call' || o?.type === 'custom_tool_call')
    .map((o: any) => o?.name)
    .filter((x: unknown) => typeof x === 'string');
}

/** OpenRouter reports what it charged (`usage.cost`, USD); elsewhere the price table decides. */
const reportedCost = (ctx: Ctx, usage: any) => (ctx.provider === 'openrouter' ? usdString(usage?.cost) : undefined);

/**
 * Chat completions and legacy completions: both stream chunks with `choices` and a final usage
 * chunk when asked. The usage chunk the wrapper asked for is hidden from a caller who did not.
 */
function completionSurface(ctx: Ctx, kind: 'chat' | 'legacy'): Surface {
  const promptOf = (p: any) => (kind === 'chat' ? p?.messages : p?.prompt);
  return {
    start(params) {
      const call = new Call(ctx.provider, params?.model, ctx.options, promptOf(params));
      if (ctx.streamUsage && params?.stream === true && params?.stream_options?.include_usage !== true) {
        return { call, params: { ...params, stream_options: { ...params.stream_options, include_usage: true } } };
      }
      return { call, params };
    },
    value(call, value) {
      call.finish({
        model: value?.model,
        usage: fromOpenAIChat(value?.usage),
        tools: kind === 'chat' ? chatToolNames(value?.choices?.[0]?.message) : [],
        response: value?.choices?.map((c: any) => (kind === 'chat' ? c?.message : c?.text)),
        costUsd: reportedCost(ctx, value?.usage),
      });
    },
    stream(call, params): StreamWatch {
      const injected = ctx.streamUsage && params?.stream_options?.include_usage !== true;
      let model: string | undefined;
      let usage: Usage | undefined;
      let cost: string | undefined;
      let text = '';
      const finished = new Set<number>();
      let usageOnly = false;
      const tools: string[] = [];
      // Legacy completions answer each prompt of an array n times.
      const prompts = kind === 'legacy' && Array.isArray(params?.prompt) && typeof params.prompt[0] !== 'number' ? params.prompt.length : 1;
      const choices = Math.max(1, n(params?.n)) * Math.max(1, prompts);
      const usageComing = ctx.streamUsage || params?.stream_options?.include_usage === true;
      return {
        rewrites: injected,
        // Only the usage-only chunk ends it early (some servers send running usage on every
        // chunk, some a usage chunk without being asked): otherwise [DONE] or the stream's end.
        complete: () => usageComing && usageOnly,
        chunk(chunk) {
          model = chunk?.model ?? model;
          usageOnly = Boolean(chunk?.usage) && Array.isArray(chunk?.choices) && chunk.choices.length === 0;
          if (chunk?.usage) {
            usage = fromOpenAIChat(chunk.usage);
            cost = reportedCost(ctx, chunk.usage) ?? cost;
          }
          for (const choice of chunk?.choices ?? []) {
            if (typeof choice?.delta?.content === 'string') text += choice.delta.content;
            if (typeof choice?.text === 'string') text += choice.text;
            for (const t of choice?.delta?.tool_calls ?? []) if (t?.function?.name) tools.push(t.function.name);
            if (choice?.finish_reason) finished.add(choice.index ?? 0);
          }
          if (injected) {
            if (chunk?.usage && Array.isArray(chunk?.choices) && chunk.choices.length === 0) return false;
            if (chunk && 'usage' in chunk && chunk.usage == null) delete chunk.usage;
          }
          return true;
        },
        end(error, cancelled) {
          // A stop is not an error; left after every choice's finish_reason it is not even a stop.
          const err = cancelled ? undefined : error;
          call.finish({
            model,
            usage,
            tools,
            error: err,
            cancelled: cancelled && finished.size < choices,
            // A stream that ended without usage (the provider sent none) is estimated, and marked.
            estimate: usage === undefined && !err,
            partialText: text,
            costUsd: cost,
            response: kind === 'chat' ? { role: 'assistant', content: text, tool_calls: tools.length ? tools : undefined } : text,
          });
        },
      };
    },
  };
}

function responsesSurface(ctx: Ctx): Surface {
  return {
    start(params) {
      const prompt = params?.instructions === undefined ? params?.input : { instructions: params.instructions, input: params?.input };
      return { call: new Call(ctx.provider, params?.model, ctx.options, prompt), params };
    },
    value(call, value) {
      call.finish({
        model: value?.model,
        usage: fromOpenAIResponses(value?.usage),
        tools: responseToolNames(value?.output),
        response: value?.output,
        costUsd: reportedCost(ctx, value?.usage),
      });
    },
    stream(call) {
      let final: any;
      let model: string | undefined;
      let text = '';
      let failure: unknown;
      return {
        complete: () => final !== undefined,
        chunk(event) {
          model = event?.response?.model ?? model;
          if (typeof event?.delta === 'string' && event?.type === 'response.output_text.delta') text += event.delta;
          if (event?.type === 'response.completed' || event?.type === 'response.incomplete') final = event.response;
          if (event?.type === 'response.failed') {
            final = event.response;
            failure = new Error(event.response?.error?.message ?? 'response failed');
          }
          if (event?.type === 'error') failure = new Error(event?.message ?? 'stream error');
        },
        end(error, cancelled) {
          call.finish({
            model: final?.model ?? model,
            usage: final?.usage ? fromOpenAIResponses(final.usage) : undefined,
            tools: responseToolNames(final?.output),
            response: final?.output ?? (text ? [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] }] : undefined),
            error: cancelled ? failure : error ?? failure,
            // Left after the final response event: complete; after a failure: that failure.
            cancelled: cancelled && final === undefined && failure === undefined,
            partialText: text,
            costUsd: reportedCost(ctx, final?.usage),
          });
        },
      };
    },
  };
}

/** Calls whose usage comes whole with the result (or in a stream's last events): embeddings, images, audio. */
function simpleSurface(ctx: Ctx, prompt: (p: any) => unknown, usageOf: (u: any) => Usage, response?: (v: any) => unknown, defaultModel?: string): Surface {
  return {
    start(params) {
      return { call: new Call(ctx.provider, params?.model ?? defaultModel, ctx.options, prompt(params)), params };
    },
    value(call, value) {
      call.finish({
        model: value?.model,
        usage: value?.usage ? usageOf(value.usage) : emptyUsage(),
        response: response?.(value),
      });
    },
    stream(call) {
      let usage: Usage | undefined;
      let text = '';
      return {
        chunk(event) {
          if (event?.usage) usage = usageOf(event.usage);
          if (typeof event?.delta === 'string') text += event.delta;
          else if (typeof event?.text === 'string') text = event.text;
        },
        end(error, cancelled) {
          call.finish({ usage, error, cancelled, partialText: text, response: text || undefined });
        },
      };
    },
  };
}

const transcriptUsage = (u: any): Usage => (u?.type === 'duration' ? emptyUsage() : fromOpenAIResponses(u));
const transcriptText = (v: any) => (typeof v === 'string' ? v : v?.text);
/** File uploads are never captured: only the text parts of the request. */
const textPrompt = (p: any) => (p?.prompt === undefined ? undefined : p.prompt);

function wrapClient(client: any, options: WrapOptions) {
  const azure = client?.constructor?.name === 'AzureOpenAI' || typeof client?.apiVersion === 'string';
  const detected = azure ? 'azure' : providerFromBaseURL(client?.baseURL);
  const provider = options.provider ?? detected ?? 'openai';
  // Only a provider known to take stream_options gets it: a host not in the list (a gateway, a
  // proxy, a local server) may refuse it. Those streams are estimated unless streamUsage is set.
  const ctx: Ctx = { provider, options, streamUsage: options.streamUsage ?? (detected !== undefined && STREAM_USAGE.has(provider)) };
  instrument(client?.chat?.completions, 'create', completionSurface(ctx, 'chat'));
  instrument(client?.completions, 'create', completionSurface(ctx, 'legacy'));
  instrument(client?.responses, 'create', responsesSurface(ctx));
  instrument(client?.embeddings, 'create', simpleSurface(ctx, (p) => p?.input, fromOpenAIChat));
  const images = simpleSurface(ctx, textPrompt, fromOpenAIResponses, undefined, 'dall-e-2');
  for (const m of ['generate', 'edit', 'createVariation']) instrument(client?.images, m, images);
  const transcripts = simpleSurface(ctx, textPrompt, transcriptUsage, transcriptText);
  instrument(client?.audio?.transcriptions, 'create', transcripts);
  instrument(client?.audio?.translations, 'create', transcripts);
  // Speech answers with audio bytes (a raw Response, left unread) and reports no usage.
  instrument(client?.audio?.speech, 'create', simpleSurface(ctx, (p) => p?.input, fromOpenAIResponses));
  followCopies(client, (copy) => wrapClient(copy, options));
}

/**
 * Instruments an `openai` client in place and returns it: every call it makes that costs tokens
 * is recorded with its model, usage, latency, tools and (unless `privacy` is `minimal`) prompt and
 * response, in the current `withTrace` scope. Clients made from it with `withOptions` are too.
 */
export function wrapOpenAI<T extends OpenAILike>(client: T, options: WrapOptions = {}): T {
  try {
    applyWrapOptions(options);
    wrapClient(client, options);
  } catch {
    // An unexpected client shape leaves the client working, just unrecorded.
  }
  return client;
}
