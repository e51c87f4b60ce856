# syntax=docker/dockerfile:1
# One image for both entry points of tradebot:
#   operator:      python -m tradebot_operator   (the default command)
#   bot runtime:   python -m tradebot_runtime    (the command the operator sets on bot pods)
# Runs as a non-root numeric user and needs nothing writable but /tmp (emptyDir in the pods),
# so it works with readOnlyRootFilesystem: true.

ARG PYTHON_VERSION=3.11

# ---- build: dependencies in their own layer, then the project ------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Only the pyproject files: this layer (the slow one) is rebuilt only when dependencies
# change. tradebot-contracts is the local distribution in contracts/, installed below.
COPY pyproject.toml ./
COPY contracts/pyproject.toml contracts/
RUN python -c "import tomllib; deps = [d for f in ('pyproject.toml', 'contracts/pyproject.toml') for d in tomllib.load(open(f, 'rb'))['project']['dependencies'] if not d.startswith('tradebot-')]; open('requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip install --requirement requirements.txt

# The product only: operator, runtime and their contracts. The development tools (tools/:
# simulator, pod runner, devenv) and the tests stay out of the image.
COPY README.md ./
COPY contracts/ contracts/
COPY operator/ operator/
COPY runtime/ runtime/
RUN pip install --no-deps ./contracts . \
 && python -c "import tradebot_contracts, tradebot_operator, tradebot_runtime" \
 && python -m compileall -q /opt/venv

# ---- final ------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="tradebot" \
      org.opencontainers.image.description="Kubernetes operator and runtime for crypto trading bots (TradingBot, Strategy, ExchangeAccount)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tradebot/tradebot" \
      org.opencontainers.image.vendor="tradebot"

# No writes at run time: no bytecode files, HOME on /tmp (an emptyDir in the pods).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

COPY --from=build /opt/venv /opt/venv

# Numeric uid/gid so that runAsNonRoot can verify it; matches the chart and runtime.runAsUser.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090
CMD ["python", "-m", "tradebot_operator"]
