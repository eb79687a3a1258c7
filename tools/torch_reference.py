"""PyTorch reference steps for ``tools/benchmark.py --what=torch_step / torch_input``.

Only the benchmark imports this file (``pip install .[bench]``); the package never
imports torch. The steps do the work of the project's TF steps, written the way
the original PyTorch code does it (lemniscate.pytorch for InstDisc's NCE and
bank, CMC's two encoders and banks, InvaSpread's in-batch criterion):

* the CIFAR-stem ResNet-18 of ``tf_contrastive/models/resnet.py`` (3x3 stride-1
  stem, no max-pool, stages of w, 2w, 4w, 8w channels, two basic blocks each,
  1x1 projection shortcuts, BN momentum 0.1 = Keras 0.9, eps 1e-5), the input
  normalisation, a linear 128-d head and L2 normalisation;
* NCE with K uniform noise rows per sample (or one shared set), Z estimated on
  the first batch and frozen, the same log-space formula as
  ``tf_contrastive/losses/nce.py``; a bank with momentum update;
* SGD with momentum 0.9, weight decay 1e-4.

Run as a worker (``python -m tools.torch_reference``) it reads one JSON command
per line on stdin and answers one JSON line on stdout, so the benchmark can
alternate it with the TF worker without their thread pools sharing a process.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.proj is None else self.proj(x)))


class Encoder(nn.Module):
    """Normalise -> CIFAR-stem ResNet-18 (width w) -> Linear(8w, dim) -> L2-normalise."""

    def __init__(self, channels: int = 3, width: int = 64, dim: int = 128):
        super().__init__()
        self.register_buffer("mean", torch.full((1, channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, channels, 1, 1), 0.25))
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width, eps=1e-5, momentum=0.1),
            nn.ReLU(),
        )
        blocks, cin = [], width
        for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            for b in range(2):
                blocks.append(BasicBlock(cin, width * mult, stride if b == 0 else 1))
                cin = width * mult
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, dim)

    def forward(self, x):
        x = self.blocks(self.stem((x - self.mean) / self.std))
        return F.normalize(self.head(x.mean(dim=(2, 3))), dim=1, eps=1e-12)


def nce_loss(pos, neg, z, n: int, eps: float = 1e-7):
    """tf_contrastive/losses/nce.py's formula: pos [B], neg [B, K] logits (s/tau)."""
    k = neg.shape[1]
    kpn = k / n
    log_z = torch.log(torch.as_tensor(z, dtype=torch.float32))
    pos_term = F.softplus(math.log(kpn + eps) - (pos - log_z))
    log_ratio = torch.logaddexp(
        neg - log_z - math.log(kpn), torch.full_like(neg, math.log(eps / kpn))
    )
    return (pos_term + F.softplus(log_ratio).sum(dim=1)).mean()


def invaspread_loss(feats, temperature: float):
    """tf_contrastive/losses/invaspread.py with every row an anchor (one device)."""
    n = feats.shape[0]
    b = n // 2
    logits = feats @ feats.detach().T / temperature
    eye = torch.eye(n, dtype=torch.bool)
    pair = torch.roll(eye, b, dims=1)
    log_p = torch.log_softmax(logits.masked_fill(eye, float("-inf")), dim=1)
    pos = log_p[pair]
    neg_mask = ~(eye | pair)
    neg = torch.log1p(-torch.exp(log_p.masked_fill(~neg_mask, -1.0))).masked_fill(~neg_mask, 0.0)
    return -(pos.sum() + neg.sum()) / n


class Bank:
    """(N, D) rows, uniform in +-1/sqrt(D/3) as lemniscate.pytorch's NCEAverage."""

    def __init__(self, n: int, dim: int, gen: torch.Generator):
        stdv = 1.0 / math.sqrt(dim / 3)
        self.rows = torch.rand(n, dim, generator=gen) * 2 * stdv - stdv
        self.z = -1.0

    def logits(self, feats, ids, noise, tau):
        pos = (feats * self.rows.index_select(0, ids)).sum(1) / tau
        if noise.dim() == 1:  # one shared set: a [B, K] matmul
            neg = feats @ self.rows.index_select(0, noise).T / tau
        else:  # K rows per sample, as lemniscate's bmm over gathered rows
            w = self.rows.index_select(0, noise.reshape(-1)).view(*noise.shape, -1)
            neg = torch.bmm(w, feats.unsqueeze(2)).squeeze(2) / tau
        return pos, neg

    def nce(self, pos, neg):
        if self.z < 0:  # estimated on the first batch, then frozen
            with torch.no_grad():
                all_logits = torch.cat([pos[:, None], neg], 1)
                self.z = float(torch.exp(all_logits).mean()) * self.rows.shape[0]
        return nce_loss(pos, neg, self.z, self.rows.shape[0])

    @torch.no_grad()
    def update(self, ids, feats, m: float = 0.5):
        new = self.rows.index_select(0, ids) * m + feats.detach() * (1 - m)
        self.rows.index_copy_(0, ids, F.normalize(new, dim=1))


class Case:
    """One benchmark case: a model, its bank(s), an optimizer and in-memory batches."""

    def __init__(self, name: str, batch: int, width: int, k: int, n: int, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.name, self.batch, self.k, self.n = name, batch, k, n
        self.shared = name.endswith("_shared")
        self.method = name.split("_")[0]
        if self.method == "cmc":
            self.encoders = [Encoder(1, width), Encoder(2, width)]
            self.banks = [Bank(n, 128, gen), Bank(n, 128, gen)]
        else:
            self.encoders = [Encoder(3, width)]
            self.banks = [Bank(n, 128, gen)] if self.method == "instdisc" else []
        params = [p for e in self.encoders for p in e.parameters()]
        self.opt = torch.optim.SGD(params, lr=0.03, momentum=0.9, weight_decay=1e-4)
        self.gen = gen
        shape = (batch, 3, 32, 32)
        self.batches = []
        for _ in range(4):
            ids = torch.randperm(n, generator=gen)[:batch]
            if self.method == "cmc":
                x = (
                    torch.rand((batch, 1, 32, 32), generator=gen),
                    torch.rand((batch, 2, 32, 32), generator=gen),
                )
            elif self.method == "invaspread":
                x = (torch.rand(shape, generator=gen), torch.rand(shape, generator=gen))
            else:
                x = (torch.rand(shape, generator=gen),)
            self.batches.append((x, ids))

    @property
    def images_per_step(self) -> int:
        return self.batch * (2 if self.method in ("invaspread", "cmc") else 1)

    def step(self, i: int) -> float:
        x, ids = self.batches[i % len(self.batches)]
        for e in self.encoders:
            e.train()
        noise = None
        if self.banks:
            size = (self.k,) if self.shared else (self.batch, self.k)
            noise = torch.randint(0, self.n, size, generator=self.gen)
        if self.method == "invaspread":
            loss = invaspread_loss(self.encoders[0](torch.cat(x, 0)), 0.1)
            feats = []
        else:
            feats = [e(v) for e, v in zip(self.encoders, x, strict=True)]
            if self.method == "instdisc":
                loss = self.banks[0].nce(*self.banks[0].logits(feats[0], ids, noise, 0.07))
            else:  # CMC core pair, both directions: view i against view j's bank
                loss = self.banks[1].nce(
                    *self.banks[1].logits(feats[0], ids, noise, 0.07)
                ) + self.banks[0].nce(*self.banks[0].logits(feats[1], ids, noise, 0.07))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        for bank, f in zip(self.banks, feats, strict=True):
            bank.update(ids, f)
        return float(loss.detach())


def fixed_scores(seed: int, batch: int = 128, k: int = 4096):
    """The fixed NCE logits (s / 0.07) and InvaSpread features both workers score for
    the loss check."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-1, 1, batch).astype(np.float32) / 0.07
    neg = rng.uniform(-1, 1, (batch, k)).astype(np.float32) / 0.07
    feats = rng.standard_normal((2 * batch, 128)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return pos, neg, feats


# ---- input pipeline: PIL decode -> RandomResizedCrop -> flip -> ColorJitter -> grayscale ----


def random_resized_crop(
    img: Image.Image, size: int, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), rng: random.Random = random
) -> Image.Image:
    """torchvision's RandomResizedCrop: 10 tries at a random area and aspect, else centre."""
    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
            break
    else:
        in_ratio = w / h
        if in_ratio < ratio[0]:
            cw, ch = w, int(round(w / ratio[0]))
        elif in_ratio > ratio[1]:
            ch, cw = h, int(round(h * ratio[1]))
        else:
            cw, ch = w, h
        x0, y0 = (w - cw) // 2, (h - ch) // 2
    return img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))


def _adjust_hue(img: Image.Image, shift: float) -> Image.Image:
    h, s, v = img.convert("HSV").split()
    h = Image.fromarray(
        (np.asarray(h, np.uint8).astype(np.int16) + int(shift * 255)).astype(np.uint8), "L"
    )
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def color_jitter(img: Image.Image, s: float, rng: random.Random = random) -> Image.Image:
    """torchvision's ColorJitter(s, s, s, min(s, 0.5)) in random order: the four jitters
    the project's pipeline applies (tf_contrastive/data/augment.py)."""
    hue = min(s, 0.5)
    ops = [
        lambda im: ImageEnhance.Brightness(im).enhance(rng.uniform(1 - s, 1 + s)),
        lambda im: ImageEnhance.Contrast(im).enhance(rng.uniform(1 - s, 1 + s)),
        lambda im: ImageEnhance.Color(im).enhance(rng.uniform(1 - s, 1 + s)),
        lambda im: _adjust_hue(im, rng.uniform(-hue, hue)),
    ]
    rng.shuffle(ops)
    for op in ops:
        img = op(img)
    return img


class JpegDataset(torch.utils.data.Dataset):
    def __init__(self, files: list[str], size: int = 224):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = Image.open(self.files[i]).convert("RGB")
        img = random_resized_crop(img, self.size)
        if random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = color_jitter(img, 0.4)
        if random.random() < 0.2:
            img = img.convert("L").convert("RGB")
        x = torch.from_numpy(np.asarray(img, np.uint8).copy()).permute(2, 0, 1)
        return x.float().div_(255), i


def _threads() -> dict:
    return {
        "torch": torch.__version__,
        "intra": torch.get_num_threads(),
        "inter": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
    }


def worker() -> None:
    """JSON commands on stdin, one JSON answer per line on stdout."""
    cases: dict[str, Case] = {}
    print(json.dumps({"ready": True, **_threads()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "nce_check":
            pos, neg, feats = fixed_scores(cmd["seed"])
            pos_t, neg_t = torch.from_numpy(pos), torch.from_numpy(neg)
            z = float(torch.exp(torch.cat([pos_t[:, None], neg_t], 1)).mean()) * cmd["n"]
            out = {
                "nce": float(nce_loss(pos_t, neg_t, z, cmd["n"])),
                "invaspread": float(invaspread_loss(torch.from_numpy(feats), 0.1)),
            }
        elif cmd["cmd"] == "step":
            if cmd["case"] not in cases:
                cases[cmd["case"]] = Case(
                    cmd["case"], cmd["batch"], cmd["width"], cmd["k"], cmd["n"]
                )
                for i in range(cmd["warmup"]):
                    cases[cmd["case"]].step(i)
            case = cases[cmd["case"]]
            t0 = time.perf_counter()
            for i in range(cmd["steps"]):
                loss = case.step(i)
            dt = time.perf_counter() - t0
            out = {"seconds": dt, "images": cmd["steps"] * case.images_per_step, "loss": loss}
        elif cmd["cmd"] == "input":
            # A fresh loader per round, closed after it: no worker prefetches while the
            # other framework is being timed.
            with open(cmd["file_list"]) as f:
                files = f.read().split()
            loader = torch.utils.data.DataLoader(
                JpegDataset(files, cmd["image_size"]),
                batch_size=cmd["batch"],
                shuffle=True,
                num_workers=cmd["workers"],
                drop_last=True,
            )

            def forever(loader=loader):
                while True:
                    yield from loader

            it = forever()
            for _ in range(cmd["warmup"]):
                next(it)
            t0 = time.perf_counter()
            for _ in range(cmd["steps"]):
                x, _ = next(it)
            dt = time.perf_counter() - t0
            it.close()
            out = {"seconds": dt, "images": cmd["steps"] * x.shape[0], "shape": list(x.shape)}
        elif cmd["cmd"] == "quit":
            break
        else:
            out = {"error": f"unknown command {cmd['cmd']!r}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    worker()
