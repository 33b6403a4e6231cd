# The team's shared package, installed once in a base image.
FROM public.ecr.aws/lambda/python:3.12
COPY packages/common /tmp/common
RUN pip install --no-cache-dir /tmp/common && rm -rf /tmp/common
