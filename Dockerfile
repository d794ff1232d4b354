# syntax=docker/dockerfile:1
# Multi-stage build: dependencies compile in `build`, the runtime image holds only the virtualenv and runs as non-root.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU torch first and pinned: PyPI's default torch wheel is a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service service
COPY indexes indexes
COPY adapters adapters
COPY kg kg
RUN pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 glassbox && mkdir /data && chown glassbox /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    GLASSBOX_HOME=/data
VOLUME ["/data"]
USER glassbox
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["glassbox"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
