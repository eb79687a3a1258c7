"""tools/bad_inputs.py: every row of the README's "Bad input" table is what happens."""

import re

import pytest

from tools import bad_inputs

DIR = r"/\S+"
DATA_ROWS = [
    (
        "truncated TFRecord shard",
        rf"ValueError: {DIR}/truncated/train-00000-of-00001: corrupt or truncated TFRecord after "
        r"3 records \(truncated record at \d+\)$",
    ),
    ("same, `--config.dataset.skip_bad_records=True`", r"accepted: 3 images read$"),
    (
        "corrupted length header in a shard",
        rf"ValueError: {DIR}/header/train-00000-of-00001: corrupt or truncated TFRecord after "
        r"1 records \(corrupted record at \d+\)$",
    ),
    # The full check (dataset.check_jpegs, on by default) finds it; without it the crop
    # decodes around the damage.
    (
        "JPEG with a corrupt body (header intact)",
        rf"InvalidArgumentError: assertion failed: \[bad TFRecord data:\] \[{DIR}/body/"
        r"train-00000-of-00001: record 2 rejected \(payload does not decode\)\]",
    ),
    ("same, `--config.dataset.skip_bad_records=True`", r"accepted: 3 images read$"),
    (
        "same, `--config.dataset.check_jpegs=False` (libjpeg decodes around the damage)",
        r"accepted: 4 images read$",
    ),
    (
        "record without `image/encoded`",
        rf"InvalidArgumentError: assertion failed: \[bad ImageNet record:\] \[{DIR}/missing/"
        r"train-00000-of-00001: record 2\] \[record has no image/encoded\]",
    ),
    ("same, `--config.dataset.skip_bad_records=True`", r"accepted: 3 images read$"),
    (
        "PNG payload in a record",
        rf"InvalidArgumentError: assertion failed: \[bad ImageNet record:\] \[{DIR}/png/"
        r"train-00000-of-00001: record 1\] \[payload is not a JPEG\]",
    ),
    (
        "record id outside [0, N) (input pipeline)",
        rf"InvalidArgumentError: assertion failed: \[bad instance id: {DIR}/ids/"
        r"train-00000-of-00001: record 3 has id 3, outside the memory-bank rows \[0, 3\)\]",
    ),
    (
        "id -1 reaching the memory bank",
        r"InvalidArgumentError: memory bank update: id -1 at position 1 of the gathered batch "
        r"is outside the rows \[0, 4\)$",
    ),
    ("6x9 px JPEGs, 32 px crops", r"accepted: 4 images read$"),
    (
        "grayscale JPEG file (converter)",
        r"accepted: converter re-encodes it as RGB JPEG, 30x20, 3 channels$",
    ),
    (
        "CMYK JPEG file (converter)",
        r"accepted: converter re-encodes it as RGB JPEG, 30x20, 3 channels$",
    ),
    (
        "file that is no image (converter)",
        rf"ValueError: {DIR}/text.JPEG: not a decodable image \(Unknown image file format",
    ),
    (
        "empty data directory",
        rf"FileNotFoundError: config.dataset.data_dir: no TFRecord shards match {DIR}/empty/"
        r"train-\*-of-\*$",
    ),
    (
        "`dataset.data_dir` matching no shards",
        rf"FileNotFoundError: config.dataset.data_dir: no TFRecord shards match {DIR}/nowhere/"
        r"train-\*-of-\*$",
    ),
    (
        "8 kHz WAV (audio converter)",
        rf"ValueError: {DIR}/8k.wav: sample rate is 8000 Hz, expected 16000 Hz",
    ),
    ("stereo WAV (audio converter)", rf"ValueError: {DIR}/stereo.wav: 2 channels, expected mono$"),
    (
        "truncated WAV (audio converter)",
        rf"ValueError: {DIR}/cut.wav: truncated: header declares 32000 data bytes, file holds 4956$",
    ),
    ("corrupt FLAC (audio converter)", rf"ValueError: {DIR}/junk.flac: not decodable audio"),
]
CONFIG_ROWS = [
    (
        "K >= N (`instdisc.num_negatives=60000`)",
        r"ConfigError: config.instdisc.num_negatives: K=60000 must be < N=60000 training examples$",
    ),
    (
        "tau <= 0 (`instdisc.temperature=0`)",
        r"ConfigError: config.instdisc.temperature: must be > 0, got 0.0$",
    ),
    (
        "batch 250 on 4 replicas",
        r"ConfigError: config.train.batch_size: 250 is not divisible by the 4 replicas$",
    ),
    (
        "momentum 1 (`cmc.momentum=1.0`)",
        r"ConfigError: config.cmc.momentum: must be in \[0, 1\), got 1.0$",
    ),
    ("`--config.train.batchsize=64`", r"exit 1: .*Did you mean \"batch_size\""),
    (
        "`--config.train.batch_size=big`",
        r"exit 1: FATAL Flags parsing error: flag --config.train.batch_size=big",
    ),
    ("`--config.train.epochs=-1`", r"exit 1: .*config.train.epochs: must be >= 1, got -1$"),
    ("`--config=configs/nope.py`", r"exit 1: .*No such file or directory: 'configs/nope.py'$"),
    ("`--config=nope`", r"exit 1: FATAL Flags parsing error: flag --config=nope: no config "
                        r"named 'nope' \(a file path needs a '/' or '.py'\); shipped configs: "
                        r"cmc_fashion_mnist, "),
]


def _check(rows, expected):
    assert [what for what, _ in rows] == [what for what, _ in expected]
    for (what, seen), (_, pattern) in zip(rows, expected, strict=True):
        assert re.search(pattern, seen), f"{what}: {seen!r} !~ {pattern!r}"


def test_every_data_row(tmp_path):
    _check(bad_inputs.data_rows(str(tmp_path)), DATA_ROWS)


@pytest.mark.slow  # five runs of the training binary, ~10 s each on 2 cores
def test_every_config_and_flag_row():
    _check(bad_inputs.config_rows(), CONFIG_ROWS)


def test_the_readme_table_lists_every_row_in_order():
    """The README's "Bad input" table is the tool's output: same rows, same order."""
    readme = open(bad_inputs.__file__.replace("tools/bad_inputs.py", "README.md")).read()
    table = readme[readme.index("| bad input | what the user sees |") :].split("\n\n")[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]
    assert rows == [what for what, _ in DATA_ROWS + CONFIG_ROWS]
