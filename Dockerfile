# The orderflow image: the `orderflow` CLI; run as a worker, a migration job, the approval
# inbox, the codec server or a client. Dependencies come from requirements.lock (pinned and
# hash-checked, `make lock` refreshes it), orderflow itself is installed without resolving.
FROM python:3.11.10-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starter ./starter
RUN pip install --no-cache-dir --no-deps . && useradd --create-home orderflow
USER orderflow
ENTRYPOINT ["orderflow"]
CMD ["worker"]
