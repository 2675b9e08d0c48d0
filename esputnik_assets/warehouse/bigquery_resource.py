"""dagster-gcp's BigQueryResource, plus the standard BIGQUERY_EMULATOR_HOST for emulators (anonymous credentials)."""

import contextlib
from collections.abc import Iterator

from dagster_gcp import BigQueryResource
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from pydantic import Field


class EsputnikBigQueryResource(BigQueryResource):
    """Credentials as dagster-gcp takes them: GOOGLE_APPLICATION_CREDENTIALS, application-default, or a base64 key."""

    emulator_host: str | None = Field(
        default=None, description="BIGQUERY_EMULATOR_HOST: talk to an emulator at this URL with anonymous credentials"
    )

    @contextlib.contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        if not self.emulator_host:
            with super().get_client() as client:
                yield client
            return
        yield bigquery.Client(
            project=self.project,
            location=self.location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.emulator_host),
        )
