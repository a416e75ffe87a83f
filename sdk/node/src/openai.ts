// wrapOpenAI: chat.completions.create (plain and streaming), responses.create (plain and
// streaming) and embeddings.create, recorded without changing what the caller sees.
import { Call, applyWrapOptions, emptyUsage, fromOpenAIChat, fromOpenAIResponses, instrument, watchStream, type WrapOptions } from './record.js';

export { withTrace } from './context.js';
export { flush, shutdown, configure, deliveryStats } from './transport.js';
export { log } from './log.js';
export type { TraceOptions } from './context.js';
export type { WrapOptions } from './record.js';

function chatToolNames(message: any): string[] {
  return (message?.tool_calls ?? []).map((t: any) => t?.function?.name).filter((x: unknown) => typeof x === 'string');
}

function responseToolNames(output: any): string[] {
  return (Array.isArray(output) ? output : [])
    .filter((o: any) => o?.type === 'function_call' || o?.type === 'custom_tool_call')
    .map((o: any) => o?.name)
    .filter((x: unknown) => typeof x === 'string');
}

function wrapChat(completions: any, options: WrapOptions) {
  instrument(completions, 'create', {
    start(params) {
      const call = new Call('openai', params?.model, options, params?.messages);
      if (params?.stream === true && params?.stream_options?.include_usage !== true) {
        // Ask for the usage chunk; it is hidden again from a caller who did not ask for it.
        return { call, params: { ...params, stream_options: { ...params.stream_options, include_usage: true } } };
      }
      return { call, params };
    },
    result(call, value, params) {
      if (params?.stream !== true) {
        call.finish({
          model: value?.model,
          usage: fromOpenAIChat(value?.usage),
          tools: chatToolNames(value?.choices?.[0]?.message),
          response: value?.choices?.map((c: any) => c?.message),
        });
        return;
      }
      const injected = params?.stream_options?.include_usage !== true;
      let model: string | undefined;
      let usage = emptyUsage();
      let text = '';
      const tools: string[] = [];
      watchStream(
        value,
        (chunk) => {
          model = chunk?.model ?? model;
          if (chunk?.usage) usage = fromOpenAIChat(chunk.usage);
          for (const choice of chunk?.choices ?? []) {
            if (typeof choice?.delta?.content === 'string') text += choice.delta.content;
            for (const t of choice?.delta?.tool_calls ?? []) if (t?.function?.name) tools.push(t.function.name);
          }
          if (injected) {
            if (chunk?.usage && Array.isArray(chunk?.choices) && chunk.choices.length === 0) return false;
            if (chunk && 'usage' in chunk && chunk.usage == null) delete chunk.usage;
          }
          return true;
        },
        (error) =>
          call.finish({ model, usage, tools, error, response: { role: 'assistant', content: text, tool_calls: tools.length ? tools : undefined } }),
      );
    },
  });
}

function wrapResponses(responses: any, options: WrapOptions) {
  instrument(responses, 'create', {
    start(params) {
      const prompt = params?.instructions === undefined ? params?.input : { instructions: params.instructions, input: params?.input };
      return { call: new Call('openai', params?.model, options, prompt), params };
    },
    result(call, value, params) {
      if (params?.stream !== true) {
        call.finish({
          model: value?.model,
          usage: fromOpenAIResponses(value?.usage),
          tools: responseToolNames(value?.output),
          response: value?.output,
        });
        return;
      }
      let final: any;
      let failure: unknown;
      watchStream(
        value,
        (event) => {
          if (event?.type === 'response.completed' || event?.type === 'response.incomplete') final = event.response;
          if (event?.type === 'response.failed') {
            final = event.response;
            failure = new Error(event.response?.error?.message ?? 'response failed');
          }
          if (event?.type === 'error') failure = new Error(event?.message ?? 'stream error');
        },
        (error) =>
          call.finish({
            model: final?.model,
            usage: fromOpenAIResponses(final?.usage),
            tools: responseToolNames(final?.output),
            response: final?.output,
            error: error ?? failure,
          }),
      );
    },
  });
}

function wrapEmbeddings(embeddings: any, options: WrapOptions) {
  instrument(embeddings, 'create', {
    start(params) {
      return { call: new Call('openai', params?.model, options, params?.input), params };
    },
    result(call, value) {
      call.finish({ model: value?.model, usage: fromOpenAIChat(value?.usage) });
    },
  });
}

/**
 * Instruments an `openai` client in place and returns it: every chat completion, response and
 * embedding it creates is recorded with its model, usage, latency, tools and (unless `privacy` is
 * `minimal`) prompt and response, in the current `withTrace` scope.
 */
export function wrapOpenAI<T>(client: T, options: WrapOptions = {}): T {
  try {
    applyWrapOptions(options);
    const c = client as any;
    wrapChat(c?.chat?.completions, options);
    wrapResponses(c?.responses, options);
    wrapEmbeddings(c?.embeddings, options);
  } catch {
    // An unexpected client shape leaves the client working, just unrecorded.
  }
  return client;
}
