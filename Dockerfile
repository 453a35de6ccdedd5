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
ARG SPACY_MODEL=en_core_web_sm

ENV NEWSWIRE_HOME=/opt/newswire \
    NEWSWIRE_FEEDS_FILE=/opt/newswire/config/feeds.yaml \
    NEWSWIRE_ACTORS_FILE=/opt/newswire/config/actors.yaml \
    NEWSWIRE_STAGING_DIR=/opt/newswire/staging \
    PIP_NO_CACHE_DIR=1

USER root
RUN mkdir -p /opt/newswire/staging && chown -R airflow:0 /opt/newswire
USER airflow

# Dependencies first (better layer caching), then the source.
COPY --chown=airflow:0 pyproject.toml README.md /opt/newswire/
COPY --chown=airflow:0 pipeline /opt/newswire/pipeline
# The [airflow] extra pins the same Airflow and provider versions as CI (pyproject.toml).
RUN pip install "apache-airflow==${AIRFLOW_VERSION}" "/opt/newswire[airflow]" \
    && python -m spacy download "${SPACY_MODEL}"

COPY --chown=airflow:0 config /opt/newswire/config
COPY --chown=airflow:0 dags /opt/airflow/dags

WORKDIR /opt/newswire
