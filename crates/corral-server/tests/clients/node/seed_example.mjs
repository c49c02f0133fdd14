// The seed's Node example through the real `openai` client, with zod and
// zod-to-json-schema: unchanged except `baseURL` and a dummy key (CORRAL_BASE_URL points at
// a running `corral serve` that serves `mistralai/Mixtral-8x7B-Instruct-v0.1`). The output is
// validated with ajv (independent of corral) and parsed back with zod. Exits non-zero on
// failure.
import OpenAI from 'openai';
import { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import Ajv from 'ajv';

const together = new OpenAI({ apiKey: 'dummy-key', baseURL: process.env.CORRAL_BASE_URL });

// Defining the schema we want our data in
const actionItemsSchema = z.object({
  summary: z.string().describe('A summary of the voice note'),
  actionItems: z.array(z.string()).describe('A list of action items from the voice note'),
});
const jsonSchema = zodToJsonSchema(actionItemsSchema, 'mySchema');

async function main() {
  const transcript =
    "Good morning! It's 7:00 AM, and I'm just waking up. Today is going to be a busy day, " +
    "so let's get started. First, I need to make a quick breakfast. Then, go to the gym.";
  const extract = await together.chat.completions.create({
    messages: [
      {
        role: 'system',
        content: 'The following is a voice message transcript. Only answer in JSON.',
      },
      { role: 'user', content: transcript },
    ],
    model: 'mistralai/Mixtral-8x7B-Instruct-v0.1',
    // @ts-ignore – Together-specific parameter
    response_format: { type: 'json_object', schema: jsonSchema },
  });

  if (extract?.choices?.[0]?.message?.content) {
    const output = JSON.parse(extract.choices[0].message.content);
    console.log(output);
    // Independent checks: ajv against the exact schema sent ($ref + definitions), then zod.
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(jsonSchema);
    if (!validate(output)) {
      throw new Error('invalid output: ' + JSON.stringify(validate.errors));
    }
    actionItemsSchema.parse(output);
    if (extract.choices[0].finish_reason !== 'stop') {
      throw new Error('finish_reason ' + extract.choices[0].finish_reason);
    }
    return output;
  }
  throw new Error('No output');
}

main()
  .then(() => console.log('node client: passed'))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
