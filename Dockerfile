# passpost: one image for `passpost api`, `passpost worker` and `passpost serve`.
#   docker build -t passpost .
#   docker run -p 8080:8080 -v passpost-data:/var/lib/passpost passpost serve --host 0.0.0.0
FROM python:3.11-slim

RUN useradd --system --create-home --home-dir /var/lib/passpost --shell /usr/sbin/nologin passpost

WORKDIR /opt/passpost
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER passpost
ENV PASSPOST_DATA_DIR=/var/lib/passpost \
    PASSPOST_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/passpost"]
EXPOSE 8080

# /ready checks the database, the migrations and the queue (a worker has no HTTP port:
# compose.yaml overrides this for workers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=2)"]

ENTRYPOINT ["passpost"]
CMD ["api", "--host", "0.0.0.0", "--port", "8080"]
