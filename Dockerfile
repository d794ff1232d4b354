# syntax=docker/dockerfile:1
# Glassbox, CPU only. Two stages: `build` installs everything into /opt/venv with scripts/install.sh (the very steps
# `make install` runs, so CI exercises them); the runtime stage holds only that virtualenv and runs as a non-root user,
# with collections, adapters and the ONNX export under the /data volume.
#
#   docker build -t glassbox .
#   docker run -p 8000:8000 -v glassbox-data:/data -e GLASSBOX_API_KEYS='[...]' glassbox
#
# The server listens on 0.0.0.0, so it refuses to start without GLASSBOX_API_KEYS (see `glassbox keys create`)
# unless GLASSBOX_ALLOW_ANONYMOUS=true says to serve it open.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY scripts/install.sh scripts/install.sh
COPY pyproject.toml README.md ./
# every package in pyproject's [tool.setuptools.packages.find] include (the CLI imports evaluation)
COPY service service
COPY indexes indexes
COPY adapters adapters
COPY kg kg
COPY evaluation evaluation
COPY glassbox_client glassbox_client
# CPU torch from PyTorch's index (PyPI's default torch wheel is a multi-GB CUDA build), then glassbox itself
RUN bash scripts/install.sh --torch-index-url https://download.pytorch.org/whl/cpu --runtime /opt/venv

# the same base image as `build`: the virtualenv's interpreter path must exist here too
FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 glassbox \
    && useradd --create-home --uid 10001 --gid 10001 glassbox \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    GLASSBOX_HOME=/data
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# Readiness, not liveness: Docker keeps one health status, and what uses it (compose's `service_healthy`, swarm's
# routing) needs "can answer searches" (encoder loaded, collections open), which /readyz reports with a 503 until
# then. start-period covers the first start's ONNX export and collection loading; urlopen raises on any non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["glassbox"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
