import torch

from tutor.models.hf.processors import (
    FrequencyPenaltyLogitsProcessor,
    PresencePenaltyLogitsProcessor,
    StopOnSequences,
    cut_at_stop,
    safe_prefix_length,
)

PROMPT = [7, 7, 7]  # prompt tokens never count towards a penalty


def apply(processor, generated):
    ids = torch.tensor([PROMPT + generated])
    return processor(ids, torch.zeros(1, 10))[0]


def test_frequency_penalty_grows_with_the_count():
    p = FrequencyPenaltyLogitsProcessor(0.5, prompt_length=len(PROMPT))
    scores = apply(p, [1, 2, 2, 3, 3, 3])
    assert scores[1] == -0.5 and scores[2] == -1.0 and scores[3] == -1.5
    assert scores[7] == 0 and scores[0] == 0


def test_presence_penalty_is_flat():
    p = PresencePenaltyLogitsProcessor(0.5, prompt_length=len(PROMPT))
    scores = apply(p, [1, 2, 2, 3, 3, 3])
    assert scores[1] == scores[2] == scores[3] == -0.5
    assert scores[7] == 0 and scores[0] == 0


def test_penalties_do_nothing_before_the_first_generated_token():
    for cls in (FrequencyPenaltyLogitsProcessor, PresencePenaltyLogitsProcessor):
        assert torch.all(apply(cls(1.0, len(PROMPT)), []) == 0)


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("a END b STOP", ("STOP", "END")) == ("a ", True)
    assert cut_at_stop("nothing here", ("STOP",)) == ("nothing here", False)


def test_safe_prefix_holds_back_a_partial_stop():
    assert safe_prefix_length("hello ST", ("STOP",)) == len("hello ")
    assert safe_prefix_length("hello", ("STOP",)) == 5
    assert safe_prefix_length("hello", ()) == 5


class CharTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(int(i)) for i in ids)


def test_stop_criterion_sees_sequences_across_tokens():
    prompt = [ord(c) for c in "###"]
    crit = StopOnSequences(("###",), CharTokenizer(), prompt_length=len(prompt))
    assert not crit(torch.tensor([prompt + [ord(c) for c in "ab#"]]), None)[0]  # the prompt's ### does not count
    assert crit(torch.tensor([prompt + [ord(c) for c in "ab###"]]), None)[0]
