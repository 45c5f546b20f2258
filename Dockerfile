# The ironflow server as a container image. See docker-compose.yml.
#
# The image listens on 0.0.0.0:8080, so it needs IRONFLOW_API_KEYS (the server refuses
# a non-loopback address without keys).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ironflow ./cmd/server

FROM debian:12-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --home-dir /data ironflow \
	&& mkdir /data && chown ironflow /data
COPY --from=build /out/ironflow /usr/local/bin/ironflow
USER ironflow
# SQLite (the default) keeps its file under /data/data; mount a volume on /data, or set
# IRONFLOW_DATABASE_URL=postgres://…
WORKDIR /data
ENV IRONFLOW_LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ironflow"]
