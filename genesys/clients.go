package genesys

// registerClients adds Genesys' OAuth client management routes.
func (s *Server) registerClients(r *router) {}
