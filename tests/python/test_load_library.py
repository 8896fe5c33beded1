"""Loads the built libgrpo.so into Python's torch and runs the ops through
torch.ops.grpo, against a plain-torch reference with autograd.
Usage: test_load_library.py PATH/TO/libgrpo.so   (exits 77 = skipped without torch)"""
import sys

try:
    import torch
except ImportError:
    print("python3 has no torch; skipping")
    sys.exit(77)

torch.ops.load_library(sys.argv[1])
torch.manual_seed(0)
devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and hasattr(torch.ops.grpo, "grpo_loss") else [])


def reference_loss(logp, old, ref, adv, mask, eps=0.2, beta=0.04):
    ratio = torch.exp(logp - old)
    obj = torch.min(ratio * adv[:, None], torch.clamp(ratio, 1 - eps, 1 + eps) * adv[:, None])
    x = ref - logp
    per_token = -obj + beta * (torch.exp(x) - x - 1)
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()


failures = 0
for device in devices:
    N, T, G = 8, 13, 4
    rewards = torch.rand(N, dtype=torch.float64, device=device)
    adv, mean, std = torch.ops.grpo.group_advantages(rewards, G)
    g = rewards.view(-1, G)
    expected = ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).view(-1)
    failures += not torch.allclose(adv, expected, rtol=1e-12, atol=1e-12)

    logp = (-torch.rand(N, T, dtype=torch.float64, device=device)).requires_grad_()
    old = logp.detach() + 0.3 * torch.randn(N, T, dtype=torch.float64, device=device)
    ref = logp.detach() + 0.1 * torch.randn(N, T, dtype=torch.float64, device=device)
    mask = (torch.rand(N, T, device=device) > 0.3).double()
    loss, stats = torch.ops.grpo.grpo_loss(logp, old, ref, adv, mask, loss_type="grpo", beta=0.04)
    loss.backward()
    ours = logp.grad.clone()
    logp.grad = None
    want = reference_loss(logp, old, ref, adv, mask)
    want.backward()
    failures += not torch.allclose(loss, want, rtol=1e-10, atol=1e-12)
    failures += not torch.allclose(ours, logp.grad, rtol=1e-10, atol=1e-12)
    print(f"{device}: loss {loss.item():.10f} reference {want.item():.10f}, "
          f"max |grad diff| {(ours - logp.grad).abs().max().item():.2e}, stats {stats.tolist()}")

    # token_logprobs: chunked, with its recomputing backward, against log_softmax with autograd.
    hidden = torch.randn(21, 8, dtype=torch.float64, device=device, requires_grad=True)
    weight = torch.randn(30, 8, dtype=torch.float64, device=device, requires_grad=True)
    targets = torch.randint(30, (21,), device=device)
    lp = torch.ops.grpo.token_logprobs(hidden, weight, targets, 0.7, 4)
    lp.sum().backward()
    got_h, got_w = hidden.grad.clone(), weight.grad.clone()
    hidden.grad, weight.grad = None, None
    want_lp = ((hidden @ weight.T) / 0.7).log_softmax(-1).gather(1, targets[:, None]).squeeze(1)
    want_lp.sum().backward()
    failures += not torch.allclose(lp.double(), want_lp, rtol=1e-5, atol=1e-5)
    failures += not torch.allclose(got_h, hidden.grad, rtol=1e-5, atol=1e-5)
    failures += not torch.allclose(got_w, weight.grad, rtol=1e-5, atol=1e-5)
    # token_logprobs_and_entropy: the same log-probs, and the entropy of the same logits.
    lp2, entropy = torch.ops.grpo.token_logprobs_and_entropy(hidden.detach(), weight.detach(), targets, 0.7, 4)
    logp_all = ((hidden @ weight.T) / 0.7).log_softmax(-1).detach()
    failures += not torch.equal(lp2, lp.detach())
    failures += not torch.allclose(entropy.double(), -(logp_all.exp() * logp_all).sum(-1), rtol=1e-5, atol=1e-5)

    try:
        torch.ops.grpo.grpo_loss(logp, old, ref, adv, mask, loss_type="nope")
        failures += 1
    except RuntimeError as e:
        failures += "loss_type" not in str(e)

print("1 passed, 0 failed" if failures == 0 else f"0 passed, {failures} failed")
sys.exit(1 if failures else 0)
