"""
SUPERSET_CONFIG_PATH of the superset tier: the superset_config.py that real Tutor
rendered (tutor-contrib-aspects' template with the generated plugin's patches),
run as is, then two changes that only this machine needs:

* ``WEBDRIVER_BASEURL``: Aspects points Superset's own tasks (the cache warm-up's
  ``fetch_url``) at the in-cluster Service ``http://superset:8088/``; here the
  web server listens on a free local port.
* PyMySQL as ``MySQLdb``: Aspects' image has mysqlclient, which Superset's MySQL
  engine spec imports to name column types; PyMySQL (no compiler needed) stands in.
* ``ASPECTS_TIER_GLOBAL_ASYNC_QUERIES=1`` (one test only): the flag the generator
  never sets, to show what it would do to guest tokens.
* MariaDB without sequences: Aspects' Superset database is MySQL, which has none.
  SQLAlchemy 1.4 gives MariaDB >= 10.3 sequences, and Flask-AppBuilder's
  ``create_all`` then emits ``CREATE SEQUENCE ... NO CYCLE``, which MariaDB 10.11
  rejects; without sequences the tables get AUTO_INCREMENT ids as on MySQL.
"""

import os
import runpy

import pymysql
from sqlalchemy.dialects.mysql.base import MySQLDialect

pymysql.install_as_MySQLdb()

_rendered = runpy.run_path(os.environ["ASPECTS_RENDERED_SUPERSET_CONFIG"], run_name="superset_config")
globals().update({name: value for name, value in _rendered.items() if not name.startswith("__")})

WEBDRIVER_BASEURL = os.environ["ASPECTS_TIER_WEBDRIVER_BASEURL"]

if os.environ.get("ASPECTS_TIER_GLOBAL_ASYNC_QUERIES") == "1":
    FEATURE_FLAGS = {**FEATURE_FLAGS, "GLOBAL_ASYNC_QUERIES": True}  # noqa: F821 (from the rendered config)
    GLOBAL_ASYNC_QUERIES_JWT_SECRET = "tier-" + "j" * 40
    GLOBAL_ASYNC_QUERIES_CACHE_BACKEND = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_HOST": REDIS_HOST,  # noqa: F821
        "CACHE_REDIS_PORT": REDIS_PORT,  # noqa: F821
        "CACHE_REDIS_DB": REDIS_RESULTS_DB,  # noqa: F821
    }

_initialize = MySQLDialect.initialize


def _initialize_without_sequences(self, connection):
    _initialize(self, connection)
    self.supports_sequences = False


MySQLDialect.initialize = _initialize_without_sequences
