# certbridge lab tools image, used by docker/compose.yaml only (never in
# production): the test PKI generator (tools/mkpki.py), a mosquitto broker
# playing "the cloud", and mosquitto clients playing the devices
# (docker/device.sh). The same Debian packages the tests use.
#
#   docker compose -f docker/compose.yaml build     (from the repository root)

FROM debian:bookworm-slim
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends \
        python3 python3-cryptography mosquitto mosquitto-clients \
    && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 tools/mkpki.py /usr/local/bin/mkpki.py
COPY --chmod=0755 docker/device.sh /usr/local/bin/certbridge-lab-device
COPY --chmod=0644 docker/mosquitto.conf /etc/mosquitto/certbridge-lab.conf
