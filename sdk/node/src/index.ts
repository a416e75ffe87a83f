// tokentally: attribute every OpenAI and Anthropic call to your end users.
export { withTrace, withTags, currentTrace } from './context.js';
export type { TraceOptions, Tags, TagInput } from './context.js';
export { wrapOpenAI } from './openai.js';
export { wrapAnthropic } from './anthropic.js';
export { log } from './log.js';
export type { LogEntry } from './log.js';
export { configure, flush, shutdown, deliveryStats } from './transport.js';
export type { TransportOptions, DeliveryStats, FlushOptions, RecordedEvent } from './transport.js';
export type { WrapOptions, Usage } from './record.js';
export { providerFromBaseURL } from './record.js';
export type { OpenAILike } from './openai.js';
export type { AnthropicLike } from './anthropic.js';
