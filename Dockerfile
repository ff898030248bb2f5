# One image for every optbot service: `optbot run SERVICE` picks the service.
# Build stage: a virtualenv with the pinned dependencies and optbot itself.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY services ./services
COPY optbot ./optbot
RUN pip install -c constraints.txt .

# Final stage: no compilers, no sources beyond the installed package, not root.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 optbot \
 && useradd --system --uid 10001 --gid optbot --home-dir /home/optbot --create-home optbot \
 && mkdir -p /var/lib/optbot \
 && chown optbot:optbot /var/lib/optbot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OPTBOT_VAR_DIR=/var/lib/optbot
USER 10001:10001
WORKDIR /home/optbot
# 5001 dashboard, 4102 simulator API (the simulator's fault control stays on loopback)
EXPOSE 5001 4102
# Checks the service this container runs (`optbot run` leaves a pid file).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["optbot", "health"]
ENTRYPOINT ["optbot"]
CMD ["--help"]
