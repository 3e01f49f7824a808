"""QLoRA training on a tiny random Mistral: the real 4-bit + LoRA + Trainer path, small enough for CPU CI.

The model (2 layers, hidden 64, ~100-word vocabulary) and its tokenizer are built in the test; its chat
template is Mistral-Instruct v0.2's, which rejects a system role, so the system-folding path runs too.
"""
from __future__ import annotations

import argparse
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("bitsandbytes")
from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    TrainerCallback,
)

from tests.conftest import MISTRAL_TEMPLATE
from tutor.config import Settings
from tutor.finetune import dataset
from tutor.finetune.train import add_arguments, train
from tutor.models.hf import loading

WORDS = ("you are a tutor explain what delimiters do use triple quotes around the text few shot means examples "
         "in prompt give hint without answer is this good no it lacks format yes VERDICT REASON : . , ? "
         "temperature changes randomness lower more predictable higher varied LoRA trains small matrices").split()


def conversation(i: int) -> list[dict]:
    topic = WORDS[i % len(WORDS)]
    return [
        {"role": "system", "content": "you are a tutor"},
        {"role": "user", "content": f"explain {topic} ?"},
        {"role": "assistant", "content": f"{topic} means examples in prompt . use triple quotes around the text"},
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A saved random Mistral, its tokenizer, and a dataset folder with both splits."""
    root = tmp_path_factory.mktemp("tiny")
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + ["[", "]", "INST", "/"] + WORDS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", chat_template=MISTRAL_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": []})
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                           bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    MistralForCausalLM(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    records = [dataset.record_id("explain", str(i)) for i in range(40)]
    records = [{"id": rid, "task": "explain", "source": "test", "messages": conversation(i)}
               for i, rid in enumerate(records)]
    counts = dataset.write_splits(records, root / "data")
    assert counts["validation"] > 0 and counts["train"] > 0
    settings = Settings.from_env({}, model=str(root / "model"), quantize="on", device="cpu",
                                 data_dir=root / "cache", adapters_dir=root / "adapters")
    return root, tokenizer, settings


class Snapshots(TrainerCallback):
    """Copies of every parameter when training starts and ends (4-bit weights as their packed bytes)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def trained(tiny):
    root, _, settings = tiny
    args = add_arguments(argparse.ArgumentParser()).parse_args(
        ["--name", "tiny", "--data-dir", str(root / "data"), "--max-steps", "4", "--batch-size", "4",
         "--lr", "1e-2", "--evals", "2", "--max-length", "64"])
    snapshots = Snapshots()
    model, metrics = train(args, settings, callbacks=[snapshots])
    return model, metrics, snapshots


def test_training_changes_lora_weights_only(trained):
    model, metrics, snap = trained
    assert metrics["quantization"] == "bnb-nf4-double-quant"
    assert type(model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__ == "Linear4bit"
    lora = [n for n in snap.before if "lora_" in n]
    base = [n for n in snap.before if "lora_" not in n]
    assert lora and base
    # q, k, v, o, gate, up and down projections all carry LoRA weights: "all-linear".
    assert {n.split(".")[-4] for n in lora} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                "down_proj"}
    assert all(not torch.equal(snap.before[n], snap.after[n]) for n in lora)
    assert all(torch.equal(snap.before[n], snap.after[n]) for n in base)


def test_loss_is_finite_and_logged_every_step(trained):
    _, metrics, _ = trained
    assert math.isfinite(metrics["train_loss_mean"]) and math.isfinite(metrics["val_loss_after"])
    assert metrics["steps"] == 4


def test_adapter_folder_has_card_curve_and_reloads_to_same_logits(tiny, trained):
    root, tokenizer, settings = tiny
    model, _, _ = trained
    folder = root / "adapters" / "tiny"
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "loss_curve.png",
            "training_log.json"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "bnb-nf4-double-quant" in card and "--max-steps 4" in card
    losses = [h["loss"] for h in __import__("json").loads((folder / "training_log.json").read_text()) if "loss" in h]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)

    # The saved adapter holds exactly the trained LoRA weights...
    reloaded = loading.attach_adapter(loading.load_base_model(settings), folder)
    trained_lora = get_peft_model_state_dict(model)
    saved_lora = get_peft_model_state_dict(reloaded.model)
    assert trained_lora.keys() == saved_lora.keys()
    assert all(torch.equal(trained_lora[k], saved_lora[k]) for k in trained_lora)
    # ...and serves the same function. The reference is a freshly quantized base carrying the in-memory trained
    # weights, not the training-time model object: after training, that object's NF4 quantization state
    # (double-quantized absmax) is no longer bit-identical to a fresh load, which moved logits by up to 5e-4 on
    # some CPUs. Both sides below run the same 4-bit kernels on the same bytes, so they must agree to float32
    # rounding (assert_close's default 1.3e-6 relative), on any CPU.
    reference = get_peft_model(loading.load_base_model(settings).model, model.peft_config["default"])
    set_peft_model_state_dict(reference, trained_lora)
    reference.eval()
    inputs = tokenizer("explain delimiters ?", return_tensors="pt")
    with torch.no_grad():
        expected = reference(**inputs).logits
        got = reloaded.model(**inputs).logits
    torch.testing.assert_close(got, expected)
    with torch.no_grad(), reloaded.model.disable_adapter():
        assert not torch.allclose(reloaded.model(**inputs).logits, expected)  # the adapter does something


def test_prompt_tokens_are_masked_out_of_the_loss(tiny):
    _, tokenizer, _ = tiny
    messages = conversation(3)
    encoded = dataset.encode(messages, tokenizer)
    ids, labels = encoded["input_ids"], encoded["labels"]
    n_prompt = labels.count(dataset.IGNORE_INDEX)
    assert labels[:n_prompt] == [dataset.IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:]
    # Mistral's template has no system role: the system text opens the first [INST] turn.
    prompt = tokenizer.decode(ids[:n_prompt])
    assert prompt.startswith("<s>") and "you are a tutor" in prompt and prompt.rstrip().endswith("]")
    reply = tokenizer.decode(labels[n_prompt:])
    assert reply.split() == messages[-1]["content"].split() + ["</s>"]  # the reply and its end-of-turn token
    assert dataset.encode(messages, tokenizer, max_length=5) is None  # too long: dropped, never cut
