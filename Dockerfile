# The orderflow image: the `orderflow` CLI; run as a worker, a migration job or a client.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starter ./starter
RUN pip install --no-cache-dir . && useradd --create-home orderflow
USER orderflow
ENTRYPOINT ["orderflow"]
CMD ["worker"]
