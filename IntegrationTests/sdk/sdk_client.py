"""Official SDK calls through llm-proxy, for the integration tests. Prints one JSON object.

usage: sdk_client.py CASE   (env: BASE_URL = http://127.0.0.1:PORT, KEY = virtual key)
"""
import json
import os
import sys
import time

base = os.environ["BASE_URL"]
key = os.environ["KEY"]
case = sys.argv[1]
out = {}


def openai_client(**kw):
    import openai
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, **kw)


def anthropic_client(**kw):
    import anthropic
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, **kw)


try:
    if case == "openai-chat":
        r = openai_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        out = {"content": r.choices[0].message.content, "prompt_tokens": r.usage.prompt_tokens}
    elif case == "openai-stream":
        t0 = time.time()
        first = None
        chunks = []
        for c in openai_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
                                                         extra_headers={"x-mock-chunk-delay-ms": os.environ.get("CHUNK_DELAY", "0")}):
            if first is None:
                first = time.time() - t0
            chunks.append(c.model_dump())
        out = {"content": "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"]),
               "chunks": len(chunks), "usage_chunks": sum(1 for c in chunks if c.get("usage") is not None),
               "empty_choice_chunks": sum(1 for c in chunks if not c["choices"]),
               "first_chunk_s": first, "total_s": time.time() - t0}
    elif case == "openai-stream-usage":
        chunks = list(openai_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
                                                              stream_options={"include_usage": True}))
        out = {"usage": [c.usage.model_dump() for c in chunks if c.usage is not None]}
    elif case == "openai-responses":
        r = openai_client().responses.create(model="gpt-4o-mini", input="hi")
        out = {"text": r.output_text, "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens}
    elif case == "openai-responses-stream":
        text, usage, types = "", None, []
        for e in openai_client().responses.create(model="gpt-4o-mini", input="hi", stream=True):
            types.append(e.type)
            if e.type == "response.output_text.delta":
                text += e.delta
            elif e.type == "response.completed":
                usage = {"input_tokens": e.response.usage.input_tokens, "output_tokens": e.response.usage.output_tokens}
        out = {"text": text, "usage": usage, "events": types}
    elif case == "openai-embeddings":
        r = openai_client().embeddings.create(model="text-embedding-3-small", input="hello")
        out = {"dims": len(r.data[0].embedding), "prompt_tokens": r.usage.prompt_tokens}
    elif case == "openai-models":
        out = {"models": [m.id for m in openai_client().models.list()]}
    elif case == "openai-error":
        import openai
        try:
            openai_client().chat.completions.create(model=os.environ.get("MODEL", "gpt-4o-mini"), messages=[{"role": "user", "content": "hi"}],
                                                     extra_headers=json.loads(os.environ.get("HEADERS", "{}")))
            out = {"error": None}
        except openai.APIStatusError as e:
            out = {"error": type(e).__name__, "status": e.status_code, "body": e.body,
                   "request_id": e.response.headers.get("x-request-id")}
    elif case == "openai-retry-wait":
        import openai
        c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=int(os.environ.get("RETRIES", "1")))
        c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])  # spends the burst
        t0 = time.time()
        try:
            r = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            out = {"status": r.status_code, "waited_s": time.time() - t0}
        except openai.APIStatusError as e:
            out = {"error": type(e).__name__, "waited_s": time.time() - t0}
    elif case == "anthropic-messages":
        r = anthropic_client().messages.create(model="claude-3-5-haiku-latest", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        out = {"text": r.content[0].text, "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens}
    elif case == "anthropic-stream":
        with anthropic_client().messages.stream(model="claude-3-5-haiku-latest", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
        out = {"text": text, "output_tokens": final.usage.output_tokens}
    elif case == "anthropic-error":
        import anthropic
        try:
            anthropic_client().messages.create(model="claude-3-5-haiku-latest", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
            out = {"error": None}
        except anthropic.APIStatusError as e:
            out = {"error": type(e).__name__, "status": e.status_code, "body": e.body}
    elif case == "disconnect-mid-stream":
        import http.client
        import urllib.parse
        u = urllib.parse.urlparse(base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": []}),
                     headers={"authorization": "Bearer " + key, "content-type": "application/json",
                              "x-mock-chunk-delay-ms": "100", "x-mock-chunks": "50"})
        r = conn.getresponse()
        got = 0
        while got < 2:
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                got += 1
        conn.sock.close()  # hang up mid-stream
        out = {"received": got}
    else:
        out = {"unknown_case": case}
except Exception as e:  # noqa: BLE001 - report, the Swift test asserts
    out = {"exception": type(e).__name__, "message": str(e)}
print(json.dumps(out))
