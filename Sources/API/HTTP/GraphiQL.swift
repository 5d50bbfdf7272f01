/// The GraphiQL page served at `GET /graphql` to browsers. It loads GraphiQL from a CDN in the
/// user's browser; the server itself makes no outside request.
enum GraphiQL {
    static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <title>Pedigree GraphiQL</title>
          <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
          <link rel="stylesheet" href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css">
        </head>
        <body>
          <div id="graphiql">Loading GraphiQL…</div>
          <script crossorigin src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"></script>
          <script crossorigin src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"></script>
          <script crossorigin src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"></script>
          <script>
            const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
            const defaultQuery = `# Pedigree: where did this model come from?
        {
          models { name versions stages latest { id message } }
        }
        `;
            ReactDOM.createRoot(document.getElementById('graphiql'))
              .render(React.createElement(GraphiQL, { fetcher, defaultQuery }));
          </script>
        </body>
        </html>
        """#
}
