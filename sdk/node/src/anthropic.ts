// wrapAnthropic: messages.create (plain and streaming); messages.stream goes through create.
import { Call, applyWrapOptions, emptyUsage, fromAnthropic, instrument, watchStream, type Usage, type WrapOptions } from './record.js';

export { withTrace } from './context.js';
export { flush, shutdown, configure, deliveryStats } from './transport.js';
export { log } from './log.js';
export type { TraceOptions } from './context.js';
export type { WrapOptions } from './record.js';

function toolNames(content: any): string[] {
  return (Array.isArray(content) ? content : [])
    .filter((b: any) => b?.type === 'tool_use' || b?.type === 'server_tool_use')
    .map((b: any) => b?.name)
    .filter((x: unknown) => typeof x === 'string');
}

/** Later usage figures (message_delta) complete or replace earlier ones (message_start). */
function mergeUsage(base: any, update: any): any {
  const out = { ...base };
  for (const [k, v] of Object.entries(update ?? {})) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

/**
 * Instruments an `@anthropic-ai/sdk` client in place and returns it: every message it creates
 * (plain, `stream: true`, or through `messages.stream()`) is recorded in the current trace.
 */
export function wrapAnthropic<T>(client: T, options: WrapOptions = {}): T {
  try {
    applyWrapOptions(options);
    const messages = (client as any)?.messages;
    instrument(messages, 'create', {
      start(params) {
        const prompt = params?.system === undefined ? params?.messages : { system: params.system, messages: params?.messages };
        return { call: new Call('anthropic', params?.model, options, prompt), params };
      },
      result(call, value, params) {
        if (params?.stream !== true) {
          call.finish({ model: value?.model, usage: fromAnthropic(value?.usage), tools: toolNames(value?.content), response: value?.content });
          return;
        }
        let model: string | undefined;
        let raw: any = {};
        const blocks: any[] = [];
        let failure: unknown;
        watchStream(
          value,
          (event) => {
            switch (event?.type) {
              case 'message_start':
                model = event.message?.model ?? model;
                raw = mergeUsage(raw, event.message?.usage);
                break;
              case 'message_delta':
                raw = mergeUsage(raw, event.usage);
                break;
              case 'content_block_start':
                blocks[event.index ?? blocks.length] = { ...event.content_block };
                break;
              case 'content_block_delta': {
                const b = blocks[event.index];
                if (b && event.delta?.type === 'text_delta') b.text = (b.text ?? '') + event.delta.text;
                break;
              }
              case 'error':
                failure = new Error(event.error?.message ?? 'stream error');
                break;
            }
          },
          (error) => {
            const usage: Usage = Object.keys(raw).length ? fromAnthropic(raw) : emptyUsage();
            call.finish({ model, usage, tools: toolNames(blocks), response: blocks.filter(Boolean), error: error ?? failure });
          },
        );
      },
    });
  } catch {
    // An unexpected client shape leaves the client working, just unrecorded.
  }
  return client;
}
