"""The production path (Mistral + 4-bit NF4 + LoRA adapter + a template without a system role), exercised on
CPU with a tiny randomly initialised Mistral built here: no download, same code as on the GPU Space."""
import json

import pytest
import torch

from tests.conftest import MISTRAL_TEMPLATE
from tutor.config import Settings
from tutor.errors import ModelLoadError
from tutor.models import GenerationSettings, load_model


@pytest.fixture(scope="module")
def tiny_mistral(tmp_path_factory, hf_chat_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    root = tmp_path_factory.mktemp("tiny-mistral")
    tokenizer = AutoTokenizer.from_pretrained(hf_chat_model.info.extra["source"])  # any offline tokenizer will do
    tokenizer.chat_template = MISTRAL_TEMPLATE
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model_dir = root / "model"
    MistralForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    peft_model = get_peft_model(MistralForCausalLM(config), LoraConfig(r=4, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # a fresh LoRA is a no-op (B = 0); make this one change the output
    adapters = root / "adapters"
    peft_model.save_pretrained(adapters / "tiny-lora")
    config_path = adapters / "tiny-lora" / "adapter_config.json"
    data = json.loads(config_path.read_text())
    data["base_model_name_or_path"] = str(model_dir)
    config_path.write_text(json.dumps(data))
    return model_dir, adapters


def settings_for(tiny_mistral, tmp_path, **overrides):
    model_dir, adapters = tiny_mistral
    return Settings.from_env({}, model=str(model_dir), adapters_dir=adapters, data_dir=tmp_path, device="cpu",
                             **overrides)


def test_loads_in_4bit_nf4_with_the_adapter_and_streams(tiny_mistral, tmp_path):
    import bitsandbytes as bnb

    model = load_model(settings_for(tiny_mistral, tmp_path, quantize="on", adapter="tiny-lora"))
    assert model.info.quantization == "bnb-nf4-double-quant" and model.info.adapter == "tiny-lora"
    layers = [m for m in model.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers, "no 4-bit layers"
    state = layers[0].weight.quant_state
    assert state.quant_type == "nf4" and state.nested, "expected NF4 with double quantization"
    assert any("lora_A" in n for n, _ in model.model.named_parameters())

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert model.info.extra["folds_system_role"]
    assert "[INST] Be brief.\n\nHello [/INST]" in model.render(messages)
    chunks = list(model.stream(messages, GenerationSettings(max_new_tokens=5, temperature=0)))
    assert model.count_tokens("".join(chunks)) <= 6


def test_auto_picks_the_adapter_trained_for_this_model(tiny_mistral, tmp_path):
    model = load_model(settings_for(tiny_mistral, tmp_path, quantize="off", adapter="auto"))
    assert model.info.adapter == "tiny-lora" and model.info.quantization is None


def test_adapter_changes_the_logits(tiny_mistral, tmp_path):
    plain = load_model(settings_for(tiny_mistral, tmp_path, quantize="off", adapter="none"))
    tuned = load_model(settings_for(tiny_mistral, tmp_path, quantize="off", adapter="tiny-lora"))
    messages = [{"role": "user", "content": "Hello"}]
    with torch.no_grad():
        a = plain.model(**plain.encode(messages)).logits
        b = tuned.model(**tuned.encode(messages)).logits
    assert not torch.allclose(a, b)


def test_missing_adapter_names_the_variable(tiny_mistral, tmp_path):
    with pytest.raises(ModelLoadError, match="TUTOR_ADAPTER='nope'"):
        load_model(settings_for(tiny_mistral, tmp_path, adapter="nope"))


def test_unknown_model_names_the_variable(tmp_path):
    with pytest.raises(ModelLoadError, match="TUTOR_MODEL='no-such-org/no-such-model'"):
        load_model(Settings.from_env({}, model="no-such-org/no-such-model", adapter="none", data_dir=tmp_path))
