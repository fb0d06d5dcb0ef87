"""Building the Spark KMS client jar from the source shipped in this package (`java/`).

The jar is never downloaded and never committed: `kms_jar()` compiles the Java source with the
machine's `javac` against pyspark's own jars (`pyspark/jars/*`) into a cache folder, once per
source hash and pyspark version, and returns the path. Sessions put it on `spark.jars`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

import platformdirs

from amzigo_lab.errors import ConfigError

#: The KmsClient class Spark loads (`parquet.encryption.kms.client.class`).
KMS_CLIENT_CLASS = "com.amzigo.kms.GatewayKmsClient"
#: Where built jars go unless $AMZIGO_SPARK_CACHE names another folder.
CACHE_ENV = "AMZIGO_SPARK_CACHE"


def java_sources() -> list[Path]:
    """The KMS client's Java source files, in a stable order."""
    root = Path(str(resources.files("amzigo_lab") / "spark" / "java"))
    files = sorted(root.rglob("*.java"))
    if not files:
        raise ConfigError(f"no Java source under {root}: the package is incomplete")
    return files


def pyspark_jars() -> Path:
    """pyspark's folder of jars (the compile classpath)."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError("pyspark is not installed: pip install 'amzigo-lab[spark]'") from None
    jars = Path(pyspark.__file__).parent / "jars"
    if not any(jars.glob("parquet-hadoop-*.jar")):
        raise ConfigError(f"{jars} holds no parquet-hadoop jar: a broken pyspark install")
    return jars


def source_digest(sources: list[Path], jars: Path) -> str:
    """Hash of the Java sources (names and bytes) and of the jars compiled against."""
    h = hashlib.sha256()
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for jar in sorted(jars.glob("parquet-*.jar")) + sorted(jars.glob("hadoop-client-api*.jar")):
        h.update(jar.name.encode() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """The folder of built jars ($AMZIGO_SPARK_CACHE, else the user's cache folder)."""
    where = os.environ.get(CACHE_ENV)
    return (
        Path(where) if where else platformdirs.user_cache_path("amzigo", appauthor=False) / "spark"
    )


def kms_jar(cache: Path | None = None) -> Path:
    """The KMS client jar for the current source: built now if the cache lacks it."""
    sources = java_sources()
    jars = pyspark_jars()
    folder = cache or cache_dir()
    jar = folder / f"amzigo-kms-{source_digest(sources, jars)}.jar"
    if jar.is_file():
        return jar
    javac = shutil.which("javac")
    if javac is None:
        raise ConfigError(
            "javac not found: the Spark KMS client is built from source; install a JDK 17 "
            "(Debian: apt-get install default-jdk-headless)"
        )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
        classes = Path(tmp) / "classes"
        cmd = [javac, "--release", "17", "-nowarn", "-cp", f"{jars}/*", "-d", str(classes)]
        done = subprocess.run(
            [*cmd, *map(str, sources)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ConfigError(
                f"javac failed to build the Spark KMS client: {done.stderr.strip()[:2000]}"
            )
        partial = Path(tmp) / jar.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(
                "META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: amzigo\r\n\r\n"
            )
            for cls in sorted(classes.rglob("*.class")):
                z.write(cls, cls.relative_to(classes).as_posix())
        partial.replace(jar)  # atomic: concurrent builders write the same bytes
    return jar
