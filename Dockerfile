# syntax=docker/dockerfile:1
# Multi-stage build: a builder stage resolves wheels, the runtime stage holds only the venv and the code,
# and runs as an unprivileged user. The same image serves the API, the workers and the migration job.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY nas_core ./nas_core
COPY api ./api
COPY worker ./worker
COPY cli ./cli
COPY nas_client ./nas_client
COPY migrations ./migrations
# The default image carries light runtimes only (onnxruntime; torch for the workers). EXTRAS=tf adds the TensorFlow
# converter (about 2 GB) for an image whose workers should also make the savedmodel and tflite artifacts of final
# models: `docker build --build-arg EXTRAS=tf .`. Without it those models are ready with the other formats, and their
# `tensorflow` field says the converter is not installed.
ARG EXTRAS=""
RUN pip install --upgrade pip setuptools wheel && pip install ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim AS runtime
RUN groupadd --system nas && useradd --system --gid nas --home-dir /app --shell /usr/sbin/nologin nas \
    && mkdir -p /data && chown nas:nas /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# `nas migrate` runs the migrations installed with the package; alembic.ini serves the plain `alembic` command.
COPY --chown=nas:nas alembic.ini ./
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 NAS_DATA_DIR=/data
USER nas
EXPOSE 8000
# The default command's check: the API answers /healthz. Other roles of the image (workers, the migration job)
# serve no HTTP; docker-compose.yml gives each its own check (a ping over the broker) or none.
HEALTHCHECK --interval=15s --timeout=3s --retries=5 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
CMD ["uvicorn", "api.main:create_app", "--factory", "--http", "api.http_protocol:HttpToolsProtocol", "--host", "0.0.0.0", "--port", "8000"]
