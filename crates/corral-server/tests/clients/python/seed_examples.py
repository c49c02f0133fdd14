"""The seed's Python example, and OpenAI's forms, through the real `openai` client.

Unchanged from the seed except `base_url` and a dummy key: `CORRAL_BASE_URL` points at a
running `corral serve` that serves `mistralai/Mixtral-8x7B-Instruct-v0.1`. Every output is
validated with the `jsonschema` package (an oracle independent of corral) and parsed back
with pydantic. Exits non-zero on the first failure.
"""
import json
import os

import jsonschema
import openai
from pydantic import BaseModel, Field

client = openai.OpenAI(base_url=os.environ["CORRAL_BASE_URL"], api_key="dummy-key")
MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"


# --- The seed's example: Together's JSON mode with a pydantic schema -----------------------
class User(BaseModel):
    name: str = Field(description="user name")
    address: str = Field(description="address")


chat_completion = client.chat.completions.create(
    model=MODEL,
    response_format={"type": "json_object", "schema": User.model_json_schema()},
    messages=[
        {"role": "system", "content": "You are a helpful assistant that answers in JSON."},
        {"role": "user", "content": "Create a user named Alice, who lives in 42, Wonderland Avenue."},
    ],
)
created_user = json.loads(chat_completion.choices[0].message.content)
print(json.dumps(created_user, indent=2))
jsonschema.validate(created_user, User.model_json_schema())
User.model_validate(created_user)
assert chat_completion.choices[0].finish_reason == "stop"
assert chat_completion.usage.total_tokens == (
    chat_completion.usage.prompt_tokens + chat_completion.usage.completion_tokens
)

# --- OpenAI's structured outputs form -----------------------------------------------------
schema = User.model_json_schema()
completion = client.chat.completions.create(
    model=MODEL,
    response_format={
        "type": "json_schema",
        "json_schema": {"name": "user", "schema": schema, "strict": True},
    },
    messages=[{"role": "user", "content": "Create a user named Bob, who lives in 7 Baker Street."}],
)
document = json.loads(completion.choices[0].message.content)
print("json_schema:", document)
jsonschema.validate(document, schema)

# The client's own parse helper (pydantic in, pydantic out).
parsed = client.chat.completions.parse(
    model=MODEL,
    response_format=User,
    messages=[{"role": "user", "content": "Create a user named Carol, who lives in 1 Main Road."}],
)
user = parsed.choices[0].message.parsed
print("parse:", user)
assert isinstance(user, User)

# --- Streaming ----------------------------------------------------------------------------
stream = client.chat.completions.create(
    model=MODEL,
    response_format={"type": "json_object", "schema": schema},
    messages=[{"role": "user", "content": "Create a user named Dave, who lives in 3 Elm Street."}],
    stream=True,
    stream_options={"include_usage": True},
)
text, finish, usage, chunks = "", None, None, 0
for chunk in stream:
    chunks += 1
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
print(f"stream ({chunks} chunks):", text)
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens > 0
jsonschema.validate(json.loads(text), schema)


# --- Function calling ---------------------------------------------------------------------
class WeatherQuery(BaseModel):
    city: str = Field(description="the city")
    unit: str = Field(description="celsius or fahrenheit", pattern="^(celsius|fahrenheit)$")


tools = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given city",
            "parameters": WeatherQuery.model_json_schema(),
        },
    }
]
messages = [{"role": "user", "content": "What is the weather like in Paris today, in celsius?"}]
for tool_choice in ["required", {"type": "function", "function": {"name": "get_current_weather"}}]:
    response = client.chat.completions.create(
        model=MODEL, messages=messages, tools=tools, tool_choice=tool_choice
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    arguments = json.loads(call.function.arguments)
    print("tool call:", call.function.name, arguments)
    assert call.function.name == "get_current_weather"
    jsonschema.validate(arguments, WeatherQuery.model_json_schema())
    WeatherQuery.model_validate(arguments)

# The answer to the call goes back as a tool message; plain chat continues.
follow_up = client.chat.completions.create(
    model=MODEL,
    messages=messages
    + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ],
    tools=tools,
    max_tokens=30,
)
print("after the call:", follow_up.choices[0].message.content)
assert follow_up.choices[0].finish_reason in ("stop", "length")

# --- Errors come back as the client's exception types -------------------------------------
try:
    client.chat.completions.create(
        model=MODEL,
        response_format={"type": "json_object", "schema": {"type": "integer", "minimum": 5, "maximum": 1}},
        messages=[{"role": "user", "content": "A number"}],
    )
    raise SystemExit("an unsatisfiable schema was accepted")
except openai.BadRequestError as e:
    print("unsatisfiable schema:", e.status_code, e.code, e.param)
    assert e.code == "invalid_json_schema" and e.param == "response_format"
try:
    client.chat.completions.create(model="gpt-unknown", messages=messages)
    raise SystemExit("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.code == "model_not_found"

print("python clients: all passed")
