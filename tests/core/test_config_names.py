"""``--config`` takes a shipped config's name as well as a file (core.config.config_path)."""

import os

import pytest

from tests.helpers import ROOT
from tf_contrastive import trainer
from tf_contrastive.core.config import ConfigNameParser, config_dir, config_names, config_path


def test_in_a_checkout_the_shipped_configs_are_the_configs_folder():
    assert os.path.samefile(config_dir(), os.path.join(ROOT, "configs"))
    assert os.path.samefile(trainer.DEFAULT_CONFIG, os.path.join(ROOT, "configs", "default.py"))
    names = config_names()
    assert {"default", "instdisc_fashion_mnist", "smoke_instdisc_digits"} <= set(names)
    assert "__init__" not in names


def test_a_name_is_the_shipped_file_and_a_path_stays_a_path():
    shipped = os.path.join(config_dir(), "instdisc_fashion_mnist.py")
    assert config_path("instdisc_fashion_mnist") == shipped
    assert config_path("instdisc_fashion_mnist:arg") == shipped + ":arg"
    for value in ("configs/instdisc_fashion_mnist.py", "mine.py", "/abs/x.py", "configs/nope.py"):
        assert config_path(value) == value


def test_an_unknown_name_is_an_error_listing_the_shipped_ones():
    with pytest.raises(
        ValueError,
        match=r"no config named 'instdisc_fashion' .*shipped configs: "
        r".*instdisc_fashion_mnist",
    ):
        config_path("instdisc_fashion")


def test_the_binaries_flag_parser_loads_a_config_by_name_as_by_path():
    parser = ConfigNameParser("config", lock_config=True)
    by_name = parser.parse("instdisc_fashion_mnist")
    by_path = parser.parse(os.path.join(ROOT, "configs", "instdisc_fashion_mnist.py"))
    assert by_name.to_dict() == by_path.to_dict()
    assert by_name.method == "instdisc" and by_name.train.epochs == 50
    assert parser.parse("default").train.epochs == 2
