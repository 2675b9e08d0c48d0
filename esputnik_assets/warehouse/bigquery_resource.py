"""The BigQuery connection settings, plus the standard BIGQUERY_EMULATOR_HOST for emulators (anonymous credentials).

Declaring the resource imports nothing of BigQuery's stack (google-cloud-bigquery, dagster-gcp, pandas: about
80 MiB); a client is built, by dagster-gcp's BigQueryResource, only when a run opens one on a BigQuery warehouse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from google.cloud import bigquery


class EsputnikBigQueryResource(dg.ConfigurableResource):
    """dagster-gcp's BigQueryResource settings (credentials as it takes them: GOOGLE_APPLICATION_CREDENTIALS,
    application-default, or a base64 key), declared here so only a configured BigQuery loads its client."""

    project: str | None = Field(default=None, description="Project of the datasets and jobs (BIGQUERY_PROJECT)")
    location: str | None = Field(default=None, description="Location of datasets and jobs (BIGQUERY_LOCATION)")
    gcp_credentials: str | None = Field(
        default=None, description="A base64-encoded service account key (BIGQUERY_CREDENTIALS_BASE64)"
    )
    emulator_host: str | None = Field(
        default=None, description="BIGQUERY_EMULATOR_HOST: talk to an emulator at this URL with anonymous credentials"
    )

    @contextlib.contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        if not self.emulator_host:
            from dagster_gcp import BigQueryResource

            settings = {"project": self.project, "location": self.location, "gcp_credentials": self.gcp_credentials}
            with BigQueryResource(**settings).get_client() as client:
                yield client
            return
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        yield bigquery.Client(
            project=self.project,
            location=self.location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.emulator_host),
        )
