from dspl.cli.main import main

main()
