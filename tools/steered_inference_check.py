"""What steered views can do on the bench's seed-0 checkpoints, on validation data only (issue 18, exploratory).

usage: python tools/steered_inference_check.py RUNS_DIR OUT_JSON [ARMS]
(RUNS_DIR holds supervised-<arm>-seed0-e6/checkpoint.pt, as `steerable_bench --seeds 1 --long_epochs 0` writes under
its out folder's runs/; ARMS comma-separated, default all six supervised arms)
Validation images of the in-distribution classes (never the test split); the shift is the 4 extra corruptions
(not the 15 headline ones the test's covariate set uses) at severity 5."""
import sys, json, time
from pathlib import Path
import numpy as np, torch
from steerable_nb.train import load_checkpoint
from steerable_nb.data import load_dataset, dataset_spec, EXTRA_CORRUPTIONS, CORRUPTION_GROUPS, HEADLINE_CORRUPTIONS
from steerable_nb.steering import FixedSteering
from steerable_nb.evaluate import (embed, tta_params, tta_logits, ood_scores, ood_metrics, logit_shifts, mean_steering,
                                   linear_logit_moments, uniform_theta_moments, closed_form_scores, fit_theta_reader,
                                   canonical_logits)
from steerable_nb.bench import mixed_corruption
torch.set_num_threads(1)
root, out = Path(sys.argv[1]), Path(sys.argv[2])
val = load_dataset(dataset_spec('fashion_mnist_colour', [0, 1, 2, 3, 4, 5]), 'val', size=32, seed=0)
perm = torch.randperm(len(val), generator=torch.Generator().manual_seed(123))
v_id, v_src, v_fit = val.subset(perm[:300]), val.subset(perm[300:600]), val.subset(perm[600:1000])
v_shift = mixed_corruption(v_src, list(EXTRA_CORRUPTIONS), 5)
photometric = [c for c in HEADLINE_CORRUPTIONS if CORRUPTION_GROUPS[c] == 'photometric']
v_photo = mixed_corruption(v_id, photometric, 3)
res = dict(note=__doc__, n_id=len(v_id), n_shift=len(v_shift), shift=list(EXTRA_CORRUPTIONS), photometric=photometric)
ARMS = sys.argv[3].split(',') if len(sys.argv) > 3 else ['exp', 'mlp', 'linear', 'invariant', 'plain', 'theta']
for arm in ARMS:
    t0 = time.time()
    model = load_checkpoint(root / f'supervised-{arm}-seed0-e6' / 'checkpoint.pt').model.eval()
    aug, head = model.augmentation, model.head
    theta = tta_params(aug, 64, 0.5, seed=10_000)
    r = dict()
    with torch.no_grad():
        z = embed(model, v_id.images)
        sh = logit_shifts(model.steering, head, z, theta)
        eye = torch.eye(z.shape[1])
        r['shifts'] = dict(mbar_over_member=((mean_steering(model.steering, theta) - eye).norm() /
                                             (model.steering.matrices(theta[1:]) - eye).norm(dim=(1, 2)).median()).item(),
                           member_median=sh['member'][:, 1:].median().item(), mean_median=sh['mean'].median().item(),
                           changed_logit_mean=sh['changed_logit_mean'], changed_prob_mean=sh['changed_prob_mean'])
        big = tta_params(aug, 1024, 0.5, seed=10_001)
        def scores(x):
            zx = embed(model, x)
            s = ood_scores(head(zx), FixedSteering(model.steering, theta, head=head).logits(zx))
            s['steered1024_logit_var'] = ood_scores(head(zx), FixedSteering(model.steering, big, head=head).logits(zx))['steered_logit_var']
            if model.steering.kind == 'linear':
                s.update(closed_form_scores(*linear_logit_moments(model.steering, head, zx, *uniform_theta_moments(aug.param_dim, 0.5))))
            return s
        r['val_shift_auroc'] = ood_metrics(scores(v_id.images), scores(v_shift.images))['auroc']
    reader = fit_theta_reader(model, v_fit.images)
    acc = lambda l, y: (l.argmax(-1).cpu() == y).double().mean().item()
    r['canonical'] = {}
    moves = {'brightness -0.8': (0, -0.8), 'brightness +0.8': (0, 0.8), 'contrast -0.8': (1, -0.8), 'photometric corruptions (sev 3)': None}
    for name, mv in moves.items():
        if mv is None: x = v_photo.images
        else:
            th = aug.identity(len(v_id))
            th[:, mv[0]] = mv[1]
            x = aug(v_id.images, th)
        y = v_id.labels
        with torch.no_grad():
            cl, th_hat = canonical_logits(model, x, reader=reader)
            row = {'none': acc(head(embed(model, x)), y), 'canonical_reader': acc(cl, y),
                   'canonical_grid': acc(canonical_logits(model, x, grid=theta)[0], y),
                   'true_tta_8': acc(tta_logits(model, x, theta[:8], 'true').softmax(-1).mean(1), y),
                   'steered_tta_64': acc(tta_logits(model, x, theta, 'steered').softmax(-1).mean(1), y)}
            if mv is not None: row['theta_read_mean'] = th_hat[:, mv[0]].mean().item()
        r['canonical'][name] = row
    r['seconds'] = time.time() - t0
    res[arm] = r
    print(arm, json.dumps(r['shifts']), {k: round(v, 3) for k, v in r['val_shift_auroc'].items()},
          {k: {q: round(w, 3) for q, w in v.items()} for k, v in r['canonical'].items()}, f"{r['seconds']:.0f}s", flush=True)
out.write_text(json.dumps(res, indent=1))
