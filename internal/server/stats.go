package server

// ConnectionsAccepted returns the number of connections accepted since
// the server started (Kafka's connection-creation-total).
func (s *Server) ConnectionsAccepted() int64 { return s.connsAccepted.Load() }
