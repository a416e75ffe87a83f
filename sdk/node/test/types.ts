// Type tests, checked by `tsc -p tsconfig.types.json` (part of `npm test`): the wrappers keep the
// clients' exact types, and the wrong client for a wrapper does not compile.
import OpenAI, { AzureOpenAI } from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { wrapOpenAI, wrapAnthropic, withTrace, withTags, flush, configure } from 'tokentally';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const check = <T extends true>(_: T) => undefined;

const openai = wrapOpenAI(new OpenAI({ apiKey: 'k' }), { agent: 'a', provider: 'openrouter' });
check<Equal<typeof openai, OpenAI>>(true);
const azure = wrapOpenAI(new AzureOpenAI({ apiKey: 'k', apiVersion: '2024-02-01', endpoint: 'https://x.openai.azure.com' }));
check<Equal<typeof azure, AzureOpenAI>>(true);
const claude = wrapAnthropic(new Anthropic({ apiKey: 'k' }));
check<Equal<typeof claude, Anthropic>>(true);

// The SDKs' promise types and their methods are unchanged.
const created = openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
export async function parsedTypes() {
  const completion: OpenAI.Chat.Completions.ChatCompletion = await created;
  const parsed = await openai.chat.completions.parse({ model: 'gpt-4o-mini', messages: [] });
  const content: string | null = parsed.choices[0].message.content;
  return [completion, content];
}
void created.withResponse();
void created.asResponse();
void openai.withOptions({ timeout: 1 }).chat.completions.parse({ model: 'gpt-4o-mini', messages: [] });
void claude.beta.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 1, messages: [] });

// @ts-expect-error an Anthropic client is not an OpenAI client
wrapOpenAI(new Anthropic({ apiKey: 'k' }));
// @ts-expect-error an OpenAI client is not an Anthropic client
wrapAnthropic(new OpenAI({ apiKey: 'k' }));
// @ts-expect-error flush takes a deadline, not a number
void flush(1000);

const n: Promise<number> = withTrace(() => withTags({ feature: 'x', n: 1 }, () => 1), { tags: { userId: 'u', plan: null } });
void n;
configure({ sampleRate: 0.5, disabled: false, redact: (e) => ({ ...e, prompt: undefined }) });
configure({ redact: null });
