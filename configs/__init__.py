"""The shipped configs, one ``get_config()`` file per (method, dataset); installed as
``tf_contrastive.configs`` (pyproject.toml), so the binaries take ``--config=NAME``."""
