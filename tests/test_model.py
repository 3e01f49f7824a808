"""The embedded default, for real, on both local back-ends (llama.cpp and transformers): streaming, settings,
stop sequences, context budget."""
import pytest

from tutor.models import GenerationSettings, answer_mode, complete, prompt_budget

pytestmark = pytest.mark.model

COUNT = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]


def test_streams_a_real_reply_in_chunks(each_model):
    chunks = list(each_model.stream([{"role": "user", "content": "What is a prompt?"}],
                                    GenerationSettings(max_new_tokens=24, temperature=0)))
    assert len(chunks) > 3
    assert len("".join(chunks).split()) >= 5


def test_greedy_is_deterministic_and_max_tokens_caps_length(each_model):
    settings = GenerationSettings(max_new_tokens=12, temperature=0)
    first, second = complete(each_model, COUNT, settings), complete(each_model, COUNT, settings)
    assert first == second
    assert each_model.count_tokens(first) <= 12


def test_seeded_sampling_is_reproducible(each_model):
    settings = GenerationSettings(max_new_tokens=12, temperature=1.2, seed=7)
    assert complete(each_model, COUNT, settings) == complete(each_model, COUNT, settings)


def test_stop_sequence_ends_generation_and_is_trimmed(each_model):
    free = complete(each_model, COUNT, GenerationSettings(max_new_tokens=30, temperature=0))
    assert "4" in free, free  # the model does count; otherwise the test below proves nothing
    stopped = complete(each_model, COUNT, GenerationSettings(max_new_tokens=30, temperature=0, stop=("4",)))
    assert "4" not in stopped
    assert free.startswith(stopped) and len(stopped) < len(free)


def test_frequency_penalty_changes_a_repetitive_reply(each_model):
    base = GenerationSettings(max_new_tokens=30, temperature=0, repetition_penalty=1.0)
    plain = complete(each_model, COUNT, base)
    penalised = complete(each_model, COUNT, base.with_(frequency_penalty=2.0))
    assert plain != penalised


def test_render_shows_the_chat_template(each_model):
    text = each_model.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert "Be brief." in text and "Hi" in text and "<|im_start|>assistant" in text


def test_overlong_message_is_truncated_to_fit(each_model):
    huge = "word " * (each_model.info.context_window * 2)
    messages, cut = each_model.fit_messages([{"role": "user", "content": huge}], reserve=100)
    assert cut
    assert each_model.count_tokens(each_model.render(messages)) <= prompt_budget(each_model.info, 100)
    assert "cut to fit" in messages[-1]["content"]


def test_a_long_system_message_is_shortened_too(each_model):
    """The system message used to be kept whole, so a long one reached the model past its window."""
    system = "Always answer in French. " + "Be brief and kind. " * 5_000
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "reply"}, {"role": "user", "content": "Name a colour."}]
    fitted, cut = each_model.fit_messages(messages, reserve=64)
    assert cut and each_model.count_tokens(each_model.render(fitted)) <= prompt_budget(each_model.info, 64)
    assert fitted[0]["content"].startswith("Always answer in French.") and "cut to fit" in fitted[0]["content"]
    assert fitted[-1]["content"] == "Name a colour."  # the question itself survives
    cjk = [{"role": "user", "content": "你好🙂" * 20_000}]  # several tokens per character
    fitted, cut = each_model.fit_messages(cjk, reserve=64)
    assert cut and each_model.count_tokens(each_model.render(fitted)) <= prompt_budget(each_model.info, 64)


def test_old_turns_are_dropped_before_the_question(each_model):
    turn = "lorem ipsum " * 2000
    history = [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}] * 3
    messages, cut = each_model.fit_messages(
        [{"role": "system", "content": "sys"}, *history, {"role": "user", "content": "the question"}], reserve=200)
    assert cut and messages[0]["content"] == "sys" and messages[-1]["content"] == "the question"


def test_info_tells_what_is_loaded(each_model):
    info = each_model.info
    assert "SmolLM2-135M" in info.name and info.device == "cpu" and info.max_prompt_tokens == 2048
    assert 100_000_000 < info.parameters < 200_000_000  # SmolLM2-135M: TUTOR_ANSWER_MODE=auto answers extractively
    assert answer_mode("auto", info) == "extractive"
    if info.backend == "llama.cpp":  # the GGUF re-quantized to 8 bits (TUTOR_GGUF_WEIGHTS=auto); a window for the budget
        # 2,048 prompt tokens (TUTOR_MAX_PROMPT_TOKENS) + 1,024 for the reply: the KV cache llama.cpp allocates
        assert info.extra["source"].endswith(".gguf") and info.dtype == "Q8_0" and info.context_window == 3072
    else:
        # the model's trained window; the dequantized float32 copy cached under the data dir, keyed by the GGUF
        assert info.context_window == 8192
        assert info.backend == "transformers" and info.extra["source"].endswith(tuple("0123456789"))


ECHO = [{"role": "user", "content": "What is 2+2? Answer: 4. What is 2+2? Answer:"}]


def test_repetition_penalty_counts_the_prompt_and_frequency_penalty_does_not(each_model):
    """transformers' repetition penalty reaches every token in the input, the tutor's frequency and presence
    penalties only the reply (tutor.models.hf.processors); llama.cpp is wired to read the settings the same way.
    The first new token has no reply before it, so only a penalty that counts the prompt can change it."""
    one = GenerationSettings(max_new_tokens=1, temperature=0, repetition_penalty=1.0)
    first = complete(each_model, ECHO, one)
    assert first.strip() and first.strip() in ECHO[0]["content"], first  # it echoes a prompt token
    assert complete(each_model, ECHO, one.with_(repetition_penalty=50.0)) != first
    assert complete(each_model, ECHO, one.with_(frequency_penalty=50.0, presence_penalty=50.0)) == first


def test_the_app_serves_the_shipped_adapter_by_default(served_model):
    assert served_model.info.adapter == "smollm2-tutor"  # TUTOR_ADAPTER=auto picks the adapter for `embedded`
    reply = complete(served_model, [{"role": "user", "content": "What is a delimiter in a prompt?"}],
                     GenerationSettings(max_new_tokens=20, temperature=0))
    assert len(reply.split()) >= 3
