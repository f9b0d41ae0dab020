// `make bench-anchor`: the sandbox market's 登记基本信息 endpoint composed into a supergraph
// for Hive Gateway. bench/hive.py copies this folder to a scratch directory and runs
// mesh-compose there, with MARKET_URL set to the market department of the run.
import { defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

const endpoint = process.env.MARKET_URL;
if (!endpoint) {
  throw new Error('MARKET_URL is not set: bench/hive.py sets it to the sandbox market');
}

export const composeConfig = defineConfig({
  subgraphs: [
    {
      sourceHandler: loadOpenAPISubgraph('Market', {
        source: './market-openapi.json',
        endpoint,
        // The entities call is a POST (a batch body) that only reads: a Query field, as
        // `subject` is on our side, not a Mutation.
        selectQueryOrMutationField: [{ type: 'Query', fieldName: 'entities' }],
      }),
    },
  ],
});
