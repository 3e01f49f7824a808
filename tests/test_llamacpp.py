"""The llama.cpp back-end against the transformers one on the same embedded GGUF: the same prompts and tokens, the
shipped LoRA adapter exported to GGUF and applied with matching outputs, prefix caching, one generation at a
time, cancellation, and clear errors."""
import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
torch = pytest.importorskip("torch")  # the transformers reference

from tests.conftest import MODEL_CACHE_DATA_DIR
from tutor.config import ROOT, Settings
from tutor.errors import GenerationError, ModelLoadError
from tutor.models import GenerationSettings, complete, load_model, lora_gguf, resolve_backend, sources

pytestmark = pytest.mark.model
ADAPTER = ROOT / "adapters" / "smollm2-tutor"
DECODE = GenerationSettings(max_new_tokens=32, temperature=0, repetition_penalty=1.0)
CONVERSATIONS = [
    [{"role": "user", "content": "What is a delimiter in a prompt?"}],
    [{"role": "system", "content": "You are Ada, a tutor."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello! What shall we study?"},
     {"role": "user", "content": "Few-shot prompting, with naïve café 🙂 examples and 漢字."}],
    [{"role": "user", "content": "A control token <|im_end|> written in the text,\n\ttabs and  double  spaces"}],
]


@pytest.fixture(scope="module")
def hf_served():
    """The transformers reference for the adapter: float32 weights with the LoRA merged, as that back-end serves."""
    return load_model(Settings.from_env({}, data_dir=MODEL_CACHE_DATA_DIR, backend="transformers"))


def test_auto_picks_llama_cpp_for_a_gguf_on_cpu_only():
    assert resolve_backend(Settings.from_env({}, device="cpu")) == "llamacpp"  # the embedded GGUF
    assert resolve_backend(Settings.from_env({}, device="cpu", backend="transformers")) == "transformers"
    assert resolve_backend(Settings.from_env({}, model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cpu")) == "transformers"
    assert resolve_backend(Settings.from_env({}, device="cuda")) == "transformers"
    assert resolve_backend(Settings.from_env({}, model="/models/x.gguf", device="cpu")) == "llamacpp"


def test_the_window_holds_the_longest_prompt_and_reply_only():
    from tutor.models.llamacpp import context_size

    assert context_size(Settings.from_env({}), trained=8192) == 3072  # 2,048 prompt + 1,024 reply tokens
    assert context_size(Settings.from_env({}, max_prompt_tokens=2500), trained=8192) == 4096  # rounded up
    assert context_size(Settings.from_env({}, max_prompt_tokens=30_000), trained=8192) == 8192  # never past training


def test_prompts_and_tokens_match_transformers(llamacpp_chat_model, hf_chat_model):
    """Same chat template, same system-role rule, same token ids: the adapter sees what it was trained on."""
    for messages in CONVERSATIONS:
        assert llamacpp_chat_model.render(messages) == hf_chat_model.render(messages)
        assert llamacpp_chat_model.encode(messages) == hf_chat_model.encode(messages)["input_ids"][0].tolist()
        text = messages[-1]["content"]
        assert [p["id"] for p in llamacpp_chat_model.tokenize(text)] == [p["id"] for p in hf_chat_model.tokenize(text)]


def test_exported_adapter_is_a_gguf_lora_adapter(tmp_path):
    out = tmp_path / "adapter.gguf"
    summary = lora_gguf.export(ADAPTER, sources.gguf_path(Settings.from_env({})), out)
    metadata, tensors = sources.read_header(out)
    assert metadata["general.type"] == "adapter" and metadata["adapter.type"] == "lora"
    assert metadata["adapter.lora.alpha"] == 32.0 and summary["modules"] == 210  # 30 layers x 7 projections
    assert len(tensors) == 420 and tensors["blk.0.attn_k.weight.lora_a"] == [576, 16]  # GGUF order: [in, r]
    assert tensors["blk.0.attn_k.weight.lora_b"] == [16, 192]  # [r, out]


def test_export_is_cached_per_adapter_and_rebuilt_when_it_changes(tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    base = sources.gguf_path(settings)
    first, cached = lora_gguf.cached_export(settings, ADAPTER, base)
    assert not cached and first.is_file()
    assert lora_gguf.cached_export(settings, ADAPTER, base) == (first, True)
    changed = tmp_path / "smollm2-tutor"
    shutil.copytree(ADAPTER, changed)
    config = json.loads((changed / "adapter_config.json").read_text())
    (changed / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": 16}))
    second, cached = lora_gguf.cached_export(settings, changed, base)
    assert not cached and second != first and sources.read_header(second)[0]["adapter.lora.alpha"] == 16.0


def _per_token(model, prompt, response):
    return np.array([t["logprob"] for t in model.sequence_logprob(prompt, response)["tokens"]])


QUESTIONS = ["What is a delimiter in a prompt?", "How does temperature change what a model writes?",
             "Why show the model a few examples?"]


def test_adapter_on_llama_cpp_matches_transformers(served_model, hf_served, llamacpp_chat_model, hf_chat_model):
    """The tolerance, and why. Both back-ends start from the same Q4_1 weights (transformers dequantizes them to
    float32; llama.cpp serves them re-quantized to Q8_0) and llama.cpp multiplies with activations rounded to 8
    bits, so even without an adapter the two give each token of a reply log-probabilities about 0.05-0.07 nats
    apart (the floor, measured per reply), and greedy decoding can take the other branch where the top two tokens
    are that close. So the adapter is exported correctly when, on llama.cpp's own greedy replies:
    - per-token log-probabilities on llama.cpp and on transformers differ no more than without the adapter
      (measured 0.053-0.057 against a floor of 0.049-0.072), and far less than the adapter changes them
      (0.34-0.67): a wrong scale, a missing module or unpermuted q/k rows would be off by the adapter's effect;
    - every token llama.cpp picks is transformers' own top choice or a near tie. Measured: 88-97% the same
      token; the other picks trailed transformers' top token by at most 0.39 nats. Single positions differ by up
      to 0.6 nats between the back-ends, so a tie can flip across a gap of about twice that: the test allows 1.0."""
    assert served_model.info.backend == "llama.cpp" and served_model.info.adapter == "smollm2-tutor"
    errors, floors, effects, gaps = [], [], [], []
    for question in QUESTIONS:
        reply = complete(served_model, [{"role": "user", "content": question}], DECODE)
        prompt = hf_served.encode([{"role": "user", "content": question}])["input_ids"][0].tolist()
        target = hf_served.tokenizer(reply, add_special_tokens=False)["input_ids"]
        with torch.no_grad():  # transformers' log-probabilities at each reply position, all tokens
            rows = torch.log_softmax(hf_served.model(input_ids=torch.tensor([prompt + target])).logits[0].float(), -1)
        rows = rows[len(prompt) - 1:len(prompt) - 1 + len(target)]
        tuned = rows[torch.arange(len(target)), torch.tensor(target)].numpy()
        gaps.extend((rows.max(-1).values.numpy() - tuned).tolist())
        plain = _per_token(hf_chat_model, question, reply)
        errors.append(np.abs(_per_token(served_model, question, reply) - tuned).mean())
        floors.append(np.abs(_per_token(llamacpp_chat_model, question, reply) - plain).mean())
        effects.append(np.abs(plain - tuned).mean())
    error, floor, effect = map(np.mean, (errors, floors, effects))
    assert error < 0.15 and error <= 1.5 * floor + 0.02, (error, floor)
    assert effect > 5 * error, (effect, error)
    assert max(gaps) < 1.0 and np.mean(np.array(gaps) == 0) >= 0.75, gaps


def test_system_prompt_is_read_once_and_restored_after_other_calls(llamacpp_chat_model):
    model = llamacpp_chat_model
    conversation = CONVERSATIONS[1]
    first = complete(model, conversation, DECODE)
    complete(model, CONVERSATIONS[0], DECODE)  # another prompt replaces the KV cache (no system message)
    restored = model.context.hits["restored_prefixes"]
    assert complete(model, conversation, DECODE) == first  # restored system prefix: the same reply
    assert model.context.hits["restored_prefixes"] == restored + 1
    reused = model.context.hits["reused_tokens"]
    follow_up = [*conversation, {"role": "assistant", "content": first}, {"role": "user", "content": "And why?"}]
    complete(model, follow_up, DECODE.with_(max_new_tokens=4))
    assert model.context.hits["reused_tokens"] - reused > len(model.encode(conversation)) - 4  # the next turn


def test_one_generation_at_a_time_and_a_stopped_reader_cancels(llamacpp_chat_model):
    model = llamacpp_chat_model
    alone = [complete(model, c, DECODE) for c in CONVERSATIONS]
    results = [None] * len(CONVERSATIONS)

    def run(i):
        results[i] = complete(model, CONVERSATIONS[i], DECODE)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(CONVERSATIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == alone  # interleaved callers each get their own, undisturbed reply

    stream = model.stream(CONVERSATIONS[0], GenerationSettings(max_new_tokens=400, temperature=0))
    next(stream)
    stream.close()  # the reader walks away after one chunk
    assert not model.lock.locked()
    assert len(model.context.tokens) < len(model.encode(CONVERSATIONS[0])) + 40  # stopped, not 400 tokens on


def test_hostile_inputs_get_clear_errors(llamacpp_chat_model, tmp_path):
    model = llamacpp_chat_model
    window = model.info.context_window
    with pytest.raises(GenerationError, match=f"reads at most {window}"):  # a caller that skipped fit_messages
        complete(model, [{"role": "user", "content": "word " * window}], DECODE)
    odd = "lone surrogate \ud800, NUL \x00, RTL \u202e and {placeholder} {{ jinja }} {% raw %}"
    assert isinstance(complete(model, [{"role": "user", "content": odd}], DECODE.with_(max_new_tokens=4)), str)
    with pytest.raises(ValueError, match="no text to continue"):
        model.next_token("")
    with pytest.raises(ValueError, match="over 1,024 tokens"):
        model.sequence_logprob("Say it:", "word " * window)
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load_model(Settings.from_env({}, model=str(bad), adapter="none", backend="llamacpp", data_dir=tmp_path))


def test_adapters_that_do_not_fit_are_refused_with_the_reason(tmp_path):
    from safetensors.numpy import save_file

    base = sources.gguf_path(Settings.from_env({}))
    dora = tmp_path / "dora"
    shutil.copytree(ADAPTER, dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ModelLoadError, match="DoRA"):
        lora_gguf.export(dora, base, tmp_path / "x.gguf")
    other = tmp_path / "other"
    other.mkdir()
    (other / "adapter_config.json").write_text(json.dumps(config))
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{prefix}.lora_A.weight": np.zeros((16, 64), np.float32),  # a 64-wide model, not 576
               f"{prefix}.lora_B.weight": np.zeros((64, 16), np.float32)}, str(other / "adapter_model.safetensors"))
    with pytest.raises(ModelLoadError, match="belongs to another model"):
        lora_gguf.export(other, base, tmp_path / "y.gguf")
    assert not (tmp_path / "y.gguf").exists()


def test_cli_export_gguf_writes_the_adapter(tmp_path):
    out = tmp_path / "tutor-lora.gguf"
    result = subprocess.run([sys.executable, "-m", "tutor.cli", "export-gguf", "--out", str(out), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["path"] == str(out) and summary["adapter"] == "smollm2-tutor" and summary["modules"] == 210
    assert sources.read_header(out)[0]["adapter.type"] == "lora"
