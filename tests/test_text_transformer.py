"""Token attributions and attention methods on a small BERT built here (random weights).

The model comes from a ``BertConfig`` (no download) and the tokenizer from a vocab file this
test writes. Oracles: Captum's LayerIntegratedGradients on the word-embedding layer (summed
over the embedding dimension), and attention rollout / gradient-weighted attention computed
here in closed form from the model's own ``output_attentions`` (and from torch's
``MultiheadAttention`` written out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
captum_attr = pytest.importorskip("captum.attr")

import xaudit  # noqa: E402
from xaudit.errors import CapabilityError, InputError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "bad",
         "plot", "acting", "and", "very", "boring", "fun", "not", "at", "all", "."]
TEXTS = ["the movie was great .", "the plot was very boring", "fun acting and bad plot",
         "not fun at all ."]
SEQ = 9


def assert_rel(actual: Any, expected: Any, tol: float = 1e-5) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.abs(expected).max())
    assert scale > 0
    assert float(np.abs(actual - expected).max()) <= tol * scale


class TextClassifier(torch.nn.Module):
    """Token ids in, logits out: the attention mask is derived from the padding id."""

    def __init__(self, bert: Any, pad_id: int = 0) -> None:
        super().__init__()
        self.bert, self.pad_id = bert, pad_id

    def forward(self, input_ids: Any) -> Any:
        return self.bert(input_ids=input_ids,
                         attention_mask=(input_ids != self.pad_id).long()).logits


def build_bert(attn: str = "eager") -> Any:
    config = transformers.BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=32, num_labels=3,
        attn_implementation=attn)
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).double().eval()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder: Path = tmp_path_factory.mktemp("vocab")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return transformers.BertTokenizer.from_pretrained(str(folder), local_files_only=True)


@pytest.fixture(scope="module")
def ids(tokenizer: Any) -> np.ndarray:
    enc = tokenizer(TEXTS, padding="max_length", max_length=SEQ, truncation=True,
                    return_tensors="np")
    ids = np.asarray(enc["input_ids"])
    assert (ids == tokenizer.unk_token_id).sum() == 0  # the vocab file was read
    return ids


@pytest.fixture(scope="module")
def bert() -> Any:
    return build_bert()


@pytest.fixture(scope="module")
def wrapped(bert: Any) -> tuple[Any, Any]:
    module = TextClassifier(bert).eval()
    return module, xaudit.adapt(module, feature_shape=[SEQ], dtype="float64")


def test_the_adapter_sees_token_ids(wrapped):
    _, model = wrapped
    assert model.input_spec.dtype == "int64"
    assert model.input_spec.modality == "text"
    assert model.differentiable_inputs == (False,)


def test_layer_integrated_on_embeddings_matches_captum(wrapped, ids, tokenizer):
    module, model = wrapped
    tokens = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ids]
    e = xaudit.explain(model, ids, "layer.integrated",
                       layer="bert.bert.embeddings.word_embeddings", target=[0, 2], n_steps=30,
                       tokens=tokens)
    assert e.values.shape == (len(TEXTS), SEQ, 2)
    assert e.feature_names == tuple(f"token_{i}" for i in range(SEQ))
    assert e.handoff.tokens == tuple(map(tuple, tokens))
    assert e.metadata["summed_last"] is True
    lig = captum_attr.LayerIntegratedGradients(module, module.bert.bert.embeddings.word_embeddings)
    for slot, target in enumerate((0, 2)):
        ref = lig.attribute(torch.tensor(ids), baselines=torch.zeros_like(torch.tensor(ids)),
                            target=target, n_steps=30)
        assert_rel(e.values[..., slot], ref.sum(-1).detach().numpy())


def test_layer_integrated_defaults_to_the_first_embedding(wrapped, ids):
    _, model = wrapped
    default = xaudit.explain(model, ids[:2], "layer.integrated", target=1, n_steps=10)
    named = xaudit.explain(model, ids[:2], "layer.integrated", target=1, n_steps=10,
                           layer="bert.bert.embeddings.word_embeddings")
    assert default.metadata["layer"] == "bert.bert.embeddings.word_embeddings"
    np.testing.assert_allclose(default.values, named.values, rtol=0, atol=0)


def test_layer_integrated_unsummed_keeps_the_embedding_axis(wrapped, ids):
    _, model = wrapped
    e = xaudit.explain(model, ids[:1], "layer.integrated", target=0, n_steps=8, sum_last=False)
    assert e.values.shape == (1, SEQ, 32, 1)


def rollout_closed_form(attentions: Any, residual: float = 0.5, fuse: str = "mean") -> Any:
    """Abnar and Zuidema 2020, written out: (1-r) A + r I, rows renormalised, multiplied."""
    result = None
    for attn in attentions:
        a = {"mean": attn.mean(1), "max": attn.amax(1)}[fuse]
        b = (1 - residual) * a + residual * torch.eye(a.shape[-1], dtype=a.dtype)
        b = b / b.sum(-1, keepdim=True)
        result = b if result is None else torch.bmm(b, result)
    return result


@pytest.mark.parametrize(("fuse", "residual"), [("mean", 0.5), ("max", 0.3)])
def test_attention_rollout_matches_the_closed_form(wrapped, ids, fuse, residual):
    module, model = wrapped
    e = xaudit.explain(model, ids, "attention.rollout", head_fusion=fuse, residual=residual,
                       target="all")
    mask = torch.tensor(ids != 0).long()
    with torch.no_grad():
        out = module.bert(input_ids=torch.tensor(ids), attention_mask=mask,
                          output_attentions=True)
    expected = rollout_closed_form(out.attentions, residual, fuse)[:, 0, :].numpy()
    assert e.values.shape == (len(TEXTS), SEQ, 3)
    for slot in range(3):
        assert_rel(e.values[..., slot], expected, 1e-10)
    assert "not attributions" in e.handoff.caveats[0]
    assert e.metadata["layers"] == ["bert.bert.encoder.layer.0.attention.self",
                                    "bert.bert.encoder.layer.1.attention.self"]


def test_gradient_weighted_attention_matches_the_closed_form(wrapped, ids):
    module, model = wrapped
    e = xaudit.explain(model, ids, "attention.gradient", target=[1, 2], query_token=0)
    mask = torch.tensor(ids != 0).long()
    out = module.bert(input_ids=torch.tensor(ids), attention_mask=mask, output_attentions=True)
    for slot, target in enumerate((1, 2)):
        grads = torch.autograd.grad(out.logits[:, target].sum(), out.attentions,
                                    retain_graph=True)
        relevance = torch.eye(SEQ, dtype=torch.float64).expand(len(TEXTS), SEQ, SEQ)
        for attn, grad in zip(out.attentions, grads, strict=True):
            relevance = relevance + torch.bmm((attn * grad).clamp(min=0).mean(1), relevance)
        assert_rel(e.values[..., slot], relevance[:, 0, :].detach().numpy(), 1e-10)
    assert "not attributions" in e.handoff.caveats[0]


class MhaClassifier(torch.nn.Module):
    """Token ids -> embedding -> torch's MultiheadAttention (per-head weights) -> logits."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(len(VOCAB), 8)
        self.attention = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, input_ids: Any) -> Any:
        tokens = self.embedding(input_ids)
        context, _ = self.attention(tokens, tokens, tokens, need_weights=True,
                                    average_attn_weights=False)
        return self.out(context.mean(1))


def test_gradient_weighted_attention_on_torch_multihead_attention(ids):
    torch.manual_seed(0)
    module = MhaClassifier().double().eval()
    model = xaudit.adapt(module, feature_shape=[SEQ], dtype="float64")
    e = xaudit.explain(model, ids, "attention.gradient", target=[0, 2])
    # the oracle writes the attention out, so its weights are the tensor the context uses
    mha, n = module.attention, len(TEXTS)
    tokens = module.embedding(torch.tensor(ids))
    q, k, v = (z.view(n, SEQ, 2, 4).transpose(1, 2) for z in torch.nn.functional.linear(
        tokens, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)
    context = (weights @ v).transpose(1, 2).reshape(n, SEQ, 8)
    logits = module.out(mha.out_proj(context).mean(1))
    for slot, target in enumerate((0, 2)):
        grad, = torch.autograd.grad(logits[:, target].sum(), weights, retain_graph=True)
        relevance = torch.eye(SEQ, dtype=torch.float64) + (weights * grad).clamp(min=0).mean(1)
        assert_rel(e.values[..., slot], relevance[:, 0, :].detach().numpy(), 1e-10)


@pytest.mark.parametrize(("method", "params"), [
    ("layer.conductance", {}), ("neuron.conductance", {"neuron": [0, 0]})])
def test_conductance_refuses_token_ids_before_any_work(wrapped, ids, method, params):
    _, model = wrapped
    with pytest.raises(CapabilityError, match="text"):
        xaudit.explain(model, ids, method, layer="bert.bert.embeddings", target=0, **params)


def test_a_hugging_face_model_adapted_directly_through_its_output_key(bert, ids):
    """No wrapper: ``output_key='logits'`` selects the ModelOutput's logits (no mask given)."""
    model = xaudit.adapt(bert, feature_shape=[SEQ], output_key="logits", dtype="float64")
    e = xaudit.explain(model, ids, "attention.rollout")
    with torch.no_grad():
        out = bert(input_ids=torch.tensor(ids), output_attentions=True)
    assert_rel(e.values[..., 0], rollout_closed_form(out.attentions)[:, 0, :].numpy(), 1e-10)
    lig = xaudit.explain(model, ids[:2], "layer.integrated", target=1, n_steps=10)
    ref = captum_attr.LayerIntegratedGradients(
        lambda x: bert(input_ids=x).logits, bert.bert.embeddings.word_embeddings).attribute(
        torch.tensor(ids[:2]), target=1, n_steps=10)
    assert_rel(lig.values[..., 0], ref.sum(-1).detach().numpy())


def test_attention_needs_modules_that_return_weights(ids):
    model = xaudit.adapt(TextClassifier(build_bert("sdpa")), feature_shape=[SEQ],
                         dtype="float64")
    with pytest.raises(InputError, match="attn_implementation='eager'"):
        xaudit.explain(model, ids, "attention.rollout")


def test_deeplift_refuses_token_ids(wrapped, ids):
    _, model = wrapped
    with pytest.raises(CapabilityError, match="text"):
        xaudit.explain(model, ids, "deeplift", target=0)


def _text_conformance() -> list[Any]:
    from xaudit.plugins.deep.attention import AttentionGradient, AttentionRollout
    from xaudit.plugins.deep.layer import LayerIntegrated
    from xaudit.testing import explainer_checks

    module = TextClassifier(build_bert()).eval()
    model = xaudit.adapt(module, feature_shape=[6], dtype="float64")
    X = np.array([[2, 5, 6, 7, 8, 3], [2, 15, 11, 3, 0, 0]])
    cases = []
    for cls, params in ((AttentionRollout, {}), (AttentionGradient, {}),
                        (LayerIntegrated, {"n_steps": 6})):
        for name, run in explainer_checks(cls, model=model, X=X, background=X, params=params):
            cases.append(pytest.param(run, id=f"{cls.name}-{name}"))
    return cases


@pytest.mark.parametrize("run", _text_conformance())
def test_conformance_kit(run: Any) -> None:
    run()


FACTORY = '''
import torch
import transformers


class TextClassifier(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids):
        return self.bert(input_ids=input_ids, attention_mask=(input_ids != 0).long()).logits


def bert():
    config = transformers.BertConfig(
        vocab_size=20, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
        attn_implementation="eager")
    torch.manual_seed(0)
    return TextClassifier(transformers.BertForSequenceClassification(config)).eval()
'''


def test_token_methods_run_from_a_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        ids: np.ndarray) -> None:
    import sys
    import uuid

    yaml = pytest.importorskip("yaml")
    name = f"xaudit_text_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    np.savez(tmp_path / "ids.npz", X=ids, y=np.zeros(len(ids), dtype=np.int64))
    suite = tmp_path / "text.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "tokens", "seed": 0,
        "model": {"factory": f"{name}:bert",
                  "options": {"feature_shape": [SEQ], "input_dtypes": ["int64"]}},
        "data": {"source": "ids.npz", "split": {"test_size": 0}, "explain": {"n": 2},
                 "background": {"n": 2}},
        "explainers": [
            {"id": "lig", "method": "layer.integrated", "params": {"n_steps": 8}},
            {"id": "rollout", "method": "attention.rollout"},
            {"id": "grad_attention", "method": "attention.gradient"},
        ],
    }, sort_keys=False))
    try:
        result = xaudit.run_suite(suite)
    finally:
        sys.modules.pop(name, None)
    assert not result.explainer_errors, result.explainer_errors
    for key in ("lig", "rollout", "grad_attention"):
        assert result.explanations[key].values.shape == (2, SEQ, 1)
    assert "not attributions" in result.explanations["rollout"].handoff.caveats[0]
