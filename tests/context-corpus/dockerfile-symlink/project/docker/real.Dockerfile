FROM wharf-test/busybox:1
COPY . /ctx
