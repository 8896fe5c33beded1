#!/usr/bin/env python3
"""The GRPO loss against Hugging Face TRL's own: on one fixed rollout of a tiny random
transformers Llama, GRPOTrainer._compute_loss (TRL's code path: its fused log-prob head,
its loss and its normalization) against torch.ops.grpo.token_logprobs + torch.ops.grpo.grpo_loss
over the same model's hidden states; the loss and the gradient of every model weight.

  trl_parity.py PATH/TO/libgrpo.so

Cases: loss type dapo / grpo / dr_grpo / bnpo x beta 0 / 0.04 x mu 1 (no old log-probs) / 2
(old log-probs given) x token / sequence importance sampling, the rollout as one
micro-batch of one update: the two must agree. Then the rollout split as the trainers
split it, two micro-batches of one update (gradient accumulation) and two mini-batches (two
updates): our op under TRL's normalization rule must give TRL's figures, and how far grpo's
trainer's own rule (the update's token or sequence count) moves each update is printed
where it differs by design (DAPO over mini-batches, BNPO over micro-batches). Last, the size
of the one term TRL has and grpo has not: its default use_bias_correction_kl (printed).
float32; tolerance 1e-5 relative: of |loss| (at least LOSS_FLOOR), of each weight's
largest gradient.
Exit status 77 (skipped) when trl or transformers cannot be imported."""
import sys
import tempfile

SKIP = 77
RTOL = 1e-5
LOSS_FLOOR = 1e-2
N, G, LP, T, V = 8, 4, 6, 10, 96  # completions, group size, prompt and completion width, vocabulary
EPS_LOW, EPS_HIGH = 0.2, 0.28

try:
    import torch
    import transformers
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from trl import GRPOConfig, GRPOTrainer
except ImportError as e:
    print(f"trl_parity.py: skipped, {e} (the check needs scripts/requirements.txt)")
    sys.exit(SKIP)


def tiny_model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                      max_position_embeddings=64, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(config).float()
    # NB: transformers' default init gives near-uniform logits; larger weights give the
    # log-probs a spread, so that ratios clip and tokens differ.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(4.0)
    return model


def tiny_tokenizer():
    vocab = {f"t{i}": i for i in range(V)}
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t2")),
                                                pad_token="t0", eos_token="t1", unk_token="t2")
    return fast


def make_trainer(model, tmp):
    args = GRPOConfig(output_dir=tmp, use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
                      per_device_train_batch_size=N, num_generations=G, max_completion_length=T,
                      epsilon=EPS_LOW, epsilon_high=EPS_HIGH, beta=0.0, save_strategy="no", disable_tqdm=True,
                      use_bias_correction_kl=False)
    reward = lambda completions, **kw: [0.0] * len(completions)  # noqa: E731 (never called here)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args,
                          train_dataset=Dataset.from_list([{"prompt": "t3 t4"}] * N), processing_class=tiny_tokenizer())
    trainer.model.train()
    return trainer


def rollout():
    """One fixed rollout: left-padded prompts, right-padded completions of varied lengths."""
    g = torch.Generator().manual_seed(1)
    prompt_len = torch.tensor([6, 4, 5, 6, 3, 6, 5, 2])
    completion_len = torch.tensor([10, 3, 7, 1, 10, 5, 8, 2])
    prompt_ids = torch.randint(3, V, (N, LP), generator=g)
    completion_ids = torch.randint(3, V, (N, T), generator=g)
    prompt_mask = (torch.arange(LP)[None] >= LP - prompt_len[:, None]).long()
    completion_mask = (torch.arange(T)[None] < completion_len[:, None]).long()
    prompt_ids = prompt_ids * prompt_mask  # pad id 0
    completion_ids = completion_ids * completion_mask
    rewards = torch.rand(N, generator=g)
    grouped = rewards.view(-1, G)
    advantages = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).view(-1)
    return dict(prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion_ids,
                completion_mask=completion_mask, advantages=advantages, g=g)


def our_logprobs(model, r, rows):
    """(n, T) log-probs of the completion tokens through torch.ops.grpo.token_logprobs."""
    ids = torch.cat([r["prompt_ids"][rows], r["completion_ids"][rows]], 1)
    mask = torch.cat([r["prompt_mask"][rows], r["completion_mask"][rows]], 1)
    # NB: the backbone only (TRL patches the model's forward); position i predicts token i + 1.
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, LP - 1:LP - 1 + T]
    targets = r["completion_ids"][rows]
    logp = torch.ops.grpo.token_logprobs(hidden.reshape(-1, hidden.size(-1)), model.lm_head.weight,
                                         targets.reshape(-1), 1.0, 1024)
    return logp.view(targets.shape)


def fixed_logprobs(model, r):
    """Old and reference log-probs: the policy's own, moved by seeded noise (so ratios clip)."""
    with torch.no_grad():
        base = our_logprobs(model, r, torch.arange(N))
    g = r["g"]
    old = (base + 0.3 * torch.randn(base.shape, generator=g)) * r["completion_mask"]
    ref = (base + 0.2 * torch.randn(base.shape, generator=g)) * r["completion_mask"]
    return old, ref


def grads(model):
    out = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def trl_loss(trainer, r, rows, loss_type, beta, old, ref, level, gas, spg, bias_correction=False):
    """TRL's loss of the micro-batch `rows`, as its trainer computes it inside an update of
    `gas` micro-batches of a generation batch split into `spg` parts; backward included.
    bias_correction: TRL's use_bias_correction_kl (its default), the KL term times the
    importance ratio, which grpo does not have."""
    trainer.loss_type, trainer.beta, trainer.importance_sampling_level = loss_type, beta, level
    trainer.args.use_bias_correction_kl = bias_correction
    trainer.current_gradient_accumulation_steps = gas
    trainer.args.steps_per_generation = spg
    inputs = {k: r[k][rows] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages")}
    # NB: as _generate_and_score_completions sets it: the tokens of the whole generation batch.
    inputs["num_items_in_batch"] = r["completion_mask"].sum()
    if old is not None:
        inputs["old_per_token_logps"] = old[rows]
    if beta != 0.0:
        inputs["ref_per_token_logps"] = ref[rows]
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    return loss.item()


def our_loss(model, r, rows, loss_type, beta, old, ref, level, normalizer):
    logp = our_logprobs(model, r, rows)
    loss, _ = torch.ops.grpo.grpo_loss(
        logp, None if old is None else old[rows], ref[rows] if beta != 0.0 else None, r["advantages"][rows],
        r["completion_mask"][rows], epsilon_low=EPS_LOW, epsilon_high=EPS_HIGH, beta=beta, loss_type=loss_type,
        max_completion_length=T, normalizer=normalizer, importance_sampling=level)
    loss.backward()
    return loss.item()


def normalizer(loss_type, mask):
    """What the grpo trainer passes for one update made of the rows of `mask` (loss_normalizer)."""
    if loss_type == "dapo":
        return float(max(1, int(mask.sum())))
    if loss_type in ("grpo", "dr_grpo"):
        return float(mask.size(0))
    return 0.0


def difference(a_loss, a_grads, b_loss, b_grads):
    """(|loss diff| relative to max(|loss|, LOSS_FLOOR), max over weights of max |grad diff| /
    max |grad|, max |grad diff|)."""
    # NB: with μ = 1 and β = 0 the GRPO loss is about 0 (each group's advantages sum to 0), so
    # its difference is measured against LOSS_FLOOR, the size of one token's term / 100.
    loss_rel = abs(a_loss - b_loss) / max(abs(b_loss), LOSS_FLOOR)
    grad_rel = grad_abs = 0.0
    assert a_grads.keys() == b_grads.keys()
    for name in b_grads:
        d = (a_grads[name] - b_grads[name]).abs().max().item()
        grad_abs = max(grad_abs, d)
        grad_rel = max(grad_rel, d / max(b_grads[name].abs().max().item(), 1e-12))
    return loss_rel, grad_rel, grad_abs


def trl_rule(loss_type, mask, micro_rows, gas, spg, generation_tokens):
    """(op loss type, normalizer) that give, through our op, what TRL's _compute_loss gives
    for one micro-batch of `micro_rows` rows (mask: theirs) in an update of `gas`
    micro-batches of a generation batch split into `spg` parts."""
    if loss_type == "dapo":
        return "dapo", generation_tokens * gas / spg
    if loss_type == "bnpo":
        return "dapo", float(max(1, int(mask.sum()))) * gas
    return loss_type, float(micro_rows * gas)


def trainer_rule(loss_type, update_mask):
    """(op loss type, normalizer) that grpo's trainer uses for every micro-batch of an update."""
    if loss_type == "bnpo":
        return "dapo", normalizer("dapo", update_mask)
    return loss_type, normalizer(loss_type, update_mask)


def run_split(trainer, model, r, case, parts_of_update, updates, old, ref):
    """The rollout as `updates` optimizer updates of `parts_of_update` micro-batches each; per
    update: TRL's summed loss and gradient, ours under TRL's normalization rule, and ours
    under grpo's trainer's rule."""
    loss_type, beta, level = case
    rows_per_update = N // updates
    micro = rows_per_update // parts_of_update
    spg = parts_of_update * updates
    mask = r["completion_mask"]
    out = []
    for u in range(updates):
        update_rows = torch.arange(u * rows_per_update, (u + 1) * rows_per_update)
        parts = [update_rows[k * micro:(k + 1) * micro] for k in range(parts_of_update)]
        theirs = sum(trl_loss(trainer, r, rows, loss_type, beta, old, ref, level, parts_of_update, spg)
                     for rows in parts)
        their_grads = grads(model)
        as_trl = 0.0
        for rows in parts:
            kind, norm = trl_rule(loss_type, mask[rows], len(rows), parts_of_update, spg, float(mask.sum()))
            as_trl += our_loss(model, r, rows, kind, beta, old, ref, level, norm)
        trl_rule_grads = grads(model)
        kind, norm = trainer_rule(loss_type, mask[update_rows])
        ours = sum(our_loss(model, r, rows, kind, beta, old, ref, level, norm) for rows in parts)
        out.append(dict(rows=update_rows, theirs=theirs, their_grads=their_grads, as_trl=as_trl,
                        as_trl_grads=trl_rule_grads, ours=ours, our_grads=grads(model)))
    return out


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    torch.ops.load_library(sys.argv[1])
    transformers.utils.logging.set_verbosity_error()
    model = tiny_model()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(model, tmp)
    r = rollout()
    old, ref = fixed_logprobs(model, r)
    failures, worst = 0, (0.0, 0.0, 0.0)
    print(f"N {N}, G {G}, prompt width {LP}, completion width {T}, completion tokens {int(r['completion_mask'].sum())}")
    print("one micro-batch, one update: TRL GRPOTrainer._compute_loss against grpo_loss(token_logprobs)")
    print(f"{'loss':8} {'beta':>5} {'mu':>3} {'IS':9} {'TRL loss':>12} {'grpo loss':>12} {'loss rel':>9} "
          f"{'grad rel':>9} {'grad abs':>9}")
    every = torch.arange(N)
    for loss_type in ("dapo", "grpo", "dr_grpo", "bnpo"):
        for beta in (0.0, 0.04):
            for mu in (1, 2):
                for level in ("token", "sequence"):
                    o = old if mu == 2 else None
                    theirs = trl_loss(trainer, r, every, loss_type, beta, o, ref, level, 1, 1)
                    their_grads = grads(model)
                    ours = our_loss(model, r, every, loss_type, beta, o, ref, level,
                                    normalizer(loss_type, r["completion_mask"]))
                    d = difference(ours, grads(model), theirs, their_grads)
                    worst = tuple(max(a, b) for a, b in zip(worst, d))
                    ok = d[0] <= RTOL and d[1] <= RTOL
                    failures += not ok
                    print(f"{loss_type:8} {beta:5.2f} {mu:3d} {level:9} {theirs:12.8f} {ours:12.8f} {d[0]:9.1e} "
                          f"{d[1]:9.1e} {d[2]:9.1e}{'' if ok else '  FAIL'}")
    print(f"worst: loss rel {worst[0]:.1e}, grad rel {worst[1]:.1e}, grad abs {worst[2]:.1e} (tolerance {RTOL:g})")

    # The splits: our op under TRL's rule must give TRL's loss and gradients; where grpo's
    # trainer normalizes otherwise by design, how far that moves the update is printed.
    print("\nthe rollout split as the trainers split it (mu 2, beta 0.04, token IS): TRL's rule through our op,"
          " and grpo's trainer's rule")
    for loss_type in ("dapo", "grpo", "dr_grpo", "bnpo"):
        for parts, updates, what in ((2, 1, "2 micro-batches, 1 update"), (1, 2, "1 micro-batch, 2 updates")):
            for u in run_split(trainer, model, r, (loss_type, 0.04, "token"), parts, updates, old, ref):
                d = difference(u["as_trl"], u["as_trl_grads"], u["theirs"], u["their_grads"])
                worst = tuple(max(a, b) for a, b in zip(worst, d))
                ok = d[0] <= RTOL and d[1] <= RTOL
                failures += not ok
                rule = difference(u["ours"], u["our_grads"], u["theirs"], u["their_grads"])
                rows = u["rows"]
                print(f"{loss_type:8} {what:26} rows {rows[0].item()}-{rows[-1].item()}: TRL {u['theirs']:11.8f} "
                      f"TRL's rule {u['as_trl']:11.8f} (loss rel {d[0]:.1e}, grad rel {d[1]:.1e}){'' if ok else ' FAIL'}"
                      f"; grpo's rule {u['ours']:11.8f} ("
                      + ("same" if max(rule[:2]) <= RTOL else f"differs: loss rel {rule[0]:.2g}, grad rel {rule[1]:.2g}")
                      + ")")
    # TRL's default KL (use_bias_correction_kl=True) against grpo's k3 KL: printed, not compared.
    print("\nTRL's default use_bias_correction_kl=True (the KL term times the importance ratio), which grpo does "
          "not implement; the cases above set it False")
    for mu in (1, 2):
        o = old if mu == 2 else None
        theirs = trl_loss(trainer, r, every, "dapo", 0.04, o, ref, "token", 1, 1, bias_correction=True)
        their_grads = grads(model)
        ours = our_loss(model, r, every, "dapo", 0.04, o, ref, "token", normalizer("dapo", r["completion_mask"]))
        d = difference(ours, grads(model), theirs, their_grads)
        print(f"dapo, beta 0.04, mu {mu}, token IS: TRL {theirs:.8f}, grpo {ours:.8f}: loss rel {d[0]:.1e}, "
              f"grad rel {d[1]:.1e}")
    print(f"worst over all cases: loss rel {worst[0]:.1e}, grad rel {worst[1]:.1e}, grad abs {worst[2]:.1e}")
    print(f"{'1' if failures == 0 else '0'} passed, {1 if failures else 0} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
