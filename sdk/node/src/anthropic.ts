// wrapAnthropic: messages.create (plain and streaming) and beta.messages.create; messages.stream(),
// parse() and beta.messages.stream() go through create, and withOptions clients are wrapped too.
import { Call, applyWrapOptions, followCopies, fromAnthropic, instrument, providerFromBaseURL, type Surface, type Usage, type WrapOptions } from './record.js';

export { withTrace, withTags } from './context.js';
export { flush, shutdown, configure, deliveryStats } from './transport.js';
export { log } from './log.js';
export type { TraceOptions } from './context.js';
export type { WrapOptions } from './record.js';

/** The shape wrapAnthropic accepts: an `@anthropic-ai/sdk` client (an OpenAI client is a type error). */
export interface AnthropicLike {
  messages: { create: (...args: any[]) => any };
}

function toolNames(content: any): string[] {
  return (Array.isArray(content) ? content : [])
    .filter((b: any) => b?.type === 'tool_use' || b?.type === 'server_tool_use' || b?.type === 'mcp_tool_use')
    .map((b: any) => b?.name)
    .filter((x: unknown) => typeof x === 'string');
}

/** Later usage figures (message_delta) complete or replace earlier ones (message_start). */
function mergeUsage(base: any, update: any): any {
  const out = { ...base };
  for (const [k, v] of Object.entries(update ?? {})) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

function messagesSurface(provider: string, options: WrapOptions): Surface {
  return {
    start(params) {
      const prompt = params?.system === undefined ? params?.messages : { system: params.system, messages: params?.messages };
      return { call: new Call(provider, params?.model, options, prompt), params };
    },
    value(call, value) {
      call.finish({ model: value?.model, usage: fromAnthropic(value?.usage), tools: toolNames(value?.content), response: value?.content });
    },
    stream(call) {
      let model: string | undefined;
      let raw: any = {};
      const blocks: any[] = [];
      let failure: unknown;
      let text = '';
      let finished = false;
      let stopped = false;
      return {
        complete: () => stopped,
        chunk(event) {
          switch (event?.type) {
            case 'message_start':
              model = event.message?.model ?? model;
              raw = mergeUsage(raw, event.message?.usage);
              break;
            case 'message_delta':
              // Carries the final usage and stop reason: the message is complete.
              raw = mergeUsage(raw, event.usage);
              finished = true;
              break;
            case 'content_block_start':
              blocks[event.index ?? blocks.length] = { ...event.content_block };
              break;
            case 'content_block_delta': {
              const b = blocks[event.index];
              if (b && event.delta?.type === 'text_delta') {
                b.text = (b.text ?? '') + event.delta.text;
                text += event.delta.text;
              }
              break;
            }
            case 'message_stop':
              stopped = true;
              break;
            case 'error':
              failure = new Error(event.error?.message ?? 'stream error');
              break;
          }
        },
        end(error, cancelled) {
          // A stopped stream keeps what message_start reported (the input is billed in full).
          const usage: Usage | undefined = Object.keys(raw).length ? fromAnthropic(raw) : undefined;
          call.finish({
            model,
            usage,
            tools: toolNames(blocks),
            response: blocks.filter(Boolean),
            // A stop is not an error; left after the final usage it is not even a stop.
            error: cancelled ? failure : error ?? failure,
            cancelled: cancelled && !finished && failure === undefined,
            partialText: text,
          });
        },
      };
    },
  };
}

function wrapClient(client: any, options: WrapOptions) {
  const provider = options.provider ?? providerFromBaseURL(client?.baseURL) ?? 'anthropic';
  const surface = messagesSurface(provider, options);
  instrument(client?.messages, 'create', surface);
  instrument(client?.beta?.messages, 'create', surface);
  followCopies(client, (copy) => wrapClient(copy, options));
}

/**
 * Instruments an `@anthropic-ai/sdk` client in place and returns it: every message it creates
 * (plain, `stream: true`, `messages.stream()`, `parse()`, `beta.messages`, and through clients made
 * with `withOptions`) is recorded in the current trace.
 */
export function wrapAnthropic<T extends AnthropicLike>(client: T, options: WrapOptions = {}): T {
  try {
    applyWrapOptions(options);
    wrapClient(client, options);
  } catch {
    // An unexpected client shape leaves the client working, just unrecorded.
  }
  return client;
}
